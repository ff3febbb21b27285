// Helicone's filter tree: the tables and fields it names, and its parsing
// into a chquery.Cond.

package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/storage/chquery"
)

// heliconeFields maps Helicone's filter tables and fields to Tollgate's
// columns: request_response_rmt (Helicone's ClickHouse table, the form to
// use), and the older request, response and feedback tables.
var heliconeFields = map[string]map[string]chquery.Field{
	"request_response_rmt": {
		"request_id":                chquery.FieldRequestID,
		"request_created_at":        chquery.FieldCreatedAt,
		"model":                     chquery.FieldModel,
		"user_id":                   chquery.FieldUserID,
		"provider":                  chquery.FieldProvider,
		"status":                    chquery.FieldStatus,
		"latency":                   chquery.FieldLatency,
		"time_to_first_token":       chquery.FieldTTFT,
		"cost":                      chquery.FieldCost,
		"prompt_tokens":             chquery.FieldPromptTokens,
		"completion_tokens":         chquery.FieldCompletionTokens,
		"total_tokens":              chquery.FieldTotalTokens,
		"prompt_cache_read_tokens":  chquery.FieldCachedTokens,
		"prompt_cache_write_tokens": chquery.FieldCacheWriteTokens,
		"target_url":                chquery.FieldTargetURL,
		"cache_reference_id":        chquery.FieldCacheReferenceID,
		"cached":                    chquery.FieldCacheHit,
		"prompt_id":                 chquery.FieldPromptID,
		"prompt_version":            chquery.FieldPromptVersion,
		"request_body":              chquery.FieldRequestBody,
		"response_body":             chquery.FieldResponseBody,
		"helicone-score-feedback":   chquery.FieldFeedback,
	},
	"request": {
		"id":         chquery.FieldRequestID,
		"created_at": chquery.FieldCreatedAt,
		"user_id":    chquery.FieldUserID,
		"model":      chquery.FieldModel,
		"path":       chquery.FieldPath,
		"prompt_id":  chquery.FieldPromptID,
	},
	"response": {
		"status": chquery.FieldStatus,
		"model":  chquery.FieldResponseModel,
	},
	"feedback": {
		"rating": chquery.FieldFeedback,
	},
}

// sessionProperties are the Helicone properties Tollgate keeps in columns
// of their own.
var sessionProperties = map[string]chquery.Field{
	"helicone-session-id":   chquery.FieldSessionID,
	"helicone-session-name": chquery.FieldSessionName,
	"helicone-session-path": chquery.FieldSessionPath,
}

// filterParser turns Helicone's filter tree into a chquery.Cond: "all", a
// branch {left, operator, right}, or a leaf {table: {field: {op: value}}}.
// A leaf with several tables, fields or operators is their AND.
type filterParser struct {
	leaves int
}

func (p *filterParser) node(v any, path string, depth int) (*chquery.Cond, *paramError) {
	if depth > maxFilterDepth {
		return nil, &paramError{path, fmt.Sprintf("nested deeper than %d levels", maxFilterDepth)}
	}
	switch v := v.(type) {
	case string:
		if v == "all" {
			return &chquery.Cond{}, nil
		}
	case map[string]any:
		if _, ok := v["operator"]; ok {
			return p.branch(v, path, depth)
		}
		if _, ok := v["left"]; ok {
			return p.branch(v, path, depth)
		}
		return p.leaf(v, path)
	}
	return nil, &paramError{path, `want "all", a branch {"left", "operator", "right"} or a leaf {"request_response_rmt": {"model": {"equals": "gpt-4o"}}}`}
}

func (p *filterParser) branch(m map[string]any, path string, depth int) (*chquery.Cond, *paramError) {
	for k := range m {
		if k != "left" && k != "operator" && k != "right" {
			return nil, &paramError{path + "." + helicone.Truncate(k, 64), "a branch has only left, operator and right"}
		}
	}
	op, _ := m["operator"].(string)
	if op != "and" && op != "or" {
		return nil, &paramError{path + ".operator", `want "and" or "or"`}
	}
	left, err := p.node(m["left"], path+".left", depth+1)
	if err != nil {
		return nil, err
	}
	right, err := p.node(m["right"], path+".right", depth+1)
	if err != nil {
		return nil, err
	}
	return &chquery.Cond{Branch: op, Left: left, Right: right}, nil
}

func (p *filterParser) leaf(m map[string]any, path string) (*chquery.Cond, *paramError) {
	var conds []*chquery.Cond
	for _, table := range sortedKeys(m) {
		tpath := path + "." + helicone.Truncate(table, 64)
		fields, ok := m[table].(map[string]any)
		if !ok {
			return nil, &paramError{tpath, "want an object of fields"}
		}
		for _, name := range sortedKeys(fields) {
			fpath := tpath + "." + helicone.Truncate(name, 64)
			switch {
			case table == "properties":
				c, err := p.property(name, fields[name], fpath)
				if err != nil {
					return nil, err
				}
				conds = append(conds, c...)
				continue
			case table == "request_response_rmt" && (name == "properties" || name == "scores"):
				named, ok := fields[name].(map[string]any)
				if !ok {
					return nil, &paramError{fpath, "want an object {name: {operator: value}}"}
				}
				for _, key := range sortedKeys(named) {
					kpath := fpath + "." + helicone.Truncate(key, 64)
					var c []*chquery.Cond
					var err *paramError
					if name == "properties" {
						c, err = p.property(key, named[key], kpath)
					} else {
						c, err = p.ops(chquery.FieldScore, key, named[key], kpath)
					}
					if err != nil {
						return nil, err
					}
					conds = append(conds, c...)
				}
				continue
			}
			tf, ok := heliconeFields[table]
			if !ok {
				return nil, &paramError{tpath, "not a filter table Tollgate supports (" + strings.Join(sortedKeys(heliconeFields), ", ") + ", properties)"}
			}
			f, ok := tf[name]
			if !ok {
				return nil, &paramError{fpath, "not a field Tollgate can filter on (" + strings.Join(sortedKeys(tf), ", ") + ")"}
			}
			c, err := p.ops(f, "", fields[name], fpath)
			if err != nil {
				return nil, err
			}
			conds = append(conds, c...)
		}
	}
	return and(conds), nil
}

func (p *filterParser) property(name string, v any, path string) ([]*chquery.Cond, *paramError) {
	if name == "" || len(name) > maxFilterKeySize {
		return nil, &paramError{path, fmt.Sprintf("a property name is 1 to %d bytes", maxFilterKeySize)}
	}
	key := strings.ToLower(name)
	if f, ok := sessionProperties[key]; ok {
		return p.ops(f, "", v, path)
	}
	return p.ops(chquery.FieldProperty, key, v, path)
}

// ops reads {operator: value, …} for field f.
func (p *filterParser) ops(f chquery.Field, key string, v any, path string) ([]*chquery.Cond, *paramError) {
	if f == chquery.FieldScore && (key == "" || len(key) > maxScoreNameSize) {
		return nil, &paramError{path, fmt.Sprintf("a score name is 1 to %d bytes", maxScoreNameSize)}
	}
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		return nil, &paramError{path, `want {operator: value}, e.g. {"equals": …}`}
	}
	kind, _ := chquery.KindOf(f)
	var out []*chquery.Cond
	for _, op := range sortedKeys(m) {
		opath := path + "." + helicone.Truncate(op, 64)
		if !supported(kind, chquery.Op(op)) {
			return nil, &paramError{opath, fmt.Sprintf("operator not supported on a %s field (supported: %s)", kindName(kind), opList(kind))}
		}
		val, err := leafValue(kind, m[op])
		if err != nil {
			return nil, &paramError{opath, err.Error()}
		}
		if p.leaves++; p.leaves > maxFilterLeaves {
			return nil, &paramError{"filter", fmt.Sprintf("more than %d conditions", maxFilterLeaves)}
		}
		out = append(out, &chquery.Cond{Field: f, Key: key, Op: chquery.Op(op), Value: val})
	}
	return out, nil
}

// and joins conditions as a balanced tree, so a leaf of many conditions
// adds only a few levels to the SQL's nesting.
func and(conds []*chquery.Cond) *chquery.Cond {
	switch len(conds) {
	case 0:
		return &chquery.Cond{} // Helicone: a leaf without conditions matches all
	case 1:
		return conds[0]
	}
	half := len(conds) / 2
	return &chquery.Cond{Branch: "and", Left: and(conds[:half]), Right: and(conds[half:])}
}

func supported(k chquery.Kind, op chquery.Op) bool {
	for _, o := range chquery.Ops(k) {
		if o == op {
			return true
		}
	}
	return false
}

func opList(k chquery.Kind) string {
	var s []string
	for _, o := range chquery.Ops(k) {
		s = append(s, string(o))
	}
	return strings.Join(s, ", ")
}

func kindName(k chquery.Kind) string {
	return map[chquery.Kind]string{chquery.KindText: "text", chquery.KindNumber: "number",
		chquery.KindTime: "timestamp", chquery.KindBool: "boolean"}[k]
}

// leafValue checks a value against the field's kind.
func leafValue(k chquery.Kind, v any) (any, error) {
	switch k {
	case chquery.KindText:
		if s, ok := v.(string); ok {
			return s, nil
		}
		return nil, errors.New("want a string")
	case chquery.KindNumber:
		if n, ok := v.(json.Number); ok {
			if f, err := strconv.ParseFloat(string(n), 64); err == nil && !math.IsInf(f, 0) {
				return f, nil
			}
		}
		return nil, errors.New("want a finite number")
	case chquery.KindBool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
		return nil, errors.New("want true or false")
	case chquery.KindTime:
		if s, ok := v.(string); ok {
			for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"} {
				if t, err := time.Parse(layout, s); err == nil && t.Year() >= 1970 && t.Year() < 2106 {
					return t.UTC(), nil
				}
			}
		}
		return nil, errors.New(`want a time such as "2026-01-02T15:04:05.000Z" (UTC unless a zone is given)`)
	}
	return nil, errors.New("unsupported field")
}
