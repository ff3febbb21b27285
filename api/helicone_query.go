package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/storage/chquery"
)

// POST /v1/request/query (and /v1/request/query-clickhouse): Helicone's
// request query. The body is Helicone's: a filter tree, sort, limit,
// offset, isCached, isScored, includeInputs, isPartOfExperiment; the answer
// is {"data": [rows with Helicone's field names], "error": null}. The whole
// body is the client's, so everything is checked here against a fixed
// vocabulary (anything else is a 400 naming where it is), and chquery binds
// every value as a parameter, the tenant first.

// Bounds of a query.
const (
	maxQueryBody     = 1 << 20
	maxFilterDepth   = 32
	maxFilterLeaves  = 100
	defaultHLimit    = 10 // Helicone's default
	maxHLimit        = 1000
	maxHOffset       = 10000
	maxFilterKeySize = 256
)

// maxBodyBudget bounds the request and response bodies of one answer
// (chquery.HeliconeQuery.BodyBudget); a variable for the tests.
var maxBodyBudget = 32 << 20

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

// heliconeSorts are the sort keys Tollgate takes (Helicone's, where the
// column exists, and cost).
var heliconeSorts = map[string]chquery.Field{
	"created_at":        chquery.FieldCreatedAt,
	"latency":           chquery.FieldLatency,
	"total_tokens":      chquery.FieldTotalTokens,
	"completion_tokens": chquery.FieldCompletionTokens,
	"prompt_tokens":     chquery.FieldPromptTokens,
	"user_id":           chquery.FieldUserID,
	"body_model":        chquery.FieldModel,
	"is_cached":         chquery.FieldCacheHit,
	"cost":              chquery.FieldCost,
}

// parsedQuery is a checked query body.
type parsedQuery struct {
	chquery.HeliconeQuery
	none bool // isPartOfExperiment: true: Tollgate has no experiments, so nothing matches
}

// parseHeliconeQuery checks a query body; the error names the field.
func parseHeliconeQuery(body []byte) (*parsedQuery, *paramError) {
	var top map[string]any
	if err := decodeJSON(body, &top); err != nil || top == nil {
		return nil, &paramError{"body", "want a JSON object {filter, sort, limit, offset, …}"}
	}
	q := &parsedQuery{HeliconeQuery: chquery.HeliconeQuery{Limit: defaultHLimit, Desc: true, BodyBudget: maxBodyBudget}}
	for _, k := range sortedKeys(top) {
		v := top[k]
		if v == nil && k != "filter" {
			continue // null is absent, as for Helicone's optional fields
		}
		switch k {
		case "filter":
			p := &filterParser{}
			c, err := p.node(v, "filter", 0)
			if err != nil {
				return nil, err
			}
			q.Filter = c
		case "limit", "offset":
			n, ok := wholeNumber(v)
			hi := maxHLimit
			if k == "offset" {
				hi = maxHOffset
			}
			if !ok || n < 0 || n > int64(hi) {
				return nil, &paramError{k, fmt.Sprintf("want a whole number from 0 to %d", hi)}
			}
			if k == "limit" {
				q.Limit = int(n)
			} else {
				q.Offset = int(n)
			}
		case "sort":
			if err := q.parseSort(v); err != nil {
				return nil, err
			}
		case "isCached", "isScored", "includeInputs", "isPartOfExperiment":
			b, ok := v.(bool)
			if !ok {
				return nil, &paramError{k, "want true or false"}
			}
			switch k {
			case "isCached":
				q.CachedOnly = b
			case "isScored":
				q.Scored = &b
			case "isPartOfExperiment":
				q.none = b
			}
		default:
			return nil, &paramError{keyName(k), "unknown field (want filter, sort, limit, offset, isCached, isScored, includeInputs, isPartOfExperiment)"}
		}
	}
	if _, ok := top["filter"]; !ok {
		return nil, &paramError{"filter", `is required ("all" for every request)`}
	}
	return q, nil
}

func (q *parsedQuery) parseSort(v any) *paramError {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return &paramError{"sort", `want one key and a direction, e.g. {"created_at": "desc"}`}
	}
	for k, dir := range m {
		f, ok := heliconeSorts[k]
		if !ok {
			return &paramError{"sort." + helicone.Truncate(k, 64), "not a sort key Tollgate supports (" + strings.Join(sortedKeys(heliconeSorts), ", ") + ")"}
		}
		switch dir {
		case "asc":
			q.Desc = false
		case "desc":
			q.Desc = true
		default:
			return &paramError{"sort." + k, `want "asc" or "desc"`}
		}
		q.Sort = f
	}
	return nil
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

func wholeNumber(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

// decodeJSON decodes one JSON value, numbers kept as json.Number, nothing
// after it.
func decodeJSON(body []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}

// keyName is a client's key as an error names it: cut short, and visible
// when empty.
func keyName(k string) string {
	if k == "" {
		return `""`
	}
	return helicone.Truncate(k, 64)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// maxHeliconeQueries bounds the Helicone queries in flight: each may scan a
// tenant's bodies (contains on response_body) and hold up to 32 MiB.
// maxTenantQueries is one tenant's share of them, so that a tenant's slow
// queries cannot take every slot and turn the others away.
const (
	maxHeliconeQueries = 8
	maxTenantQueries   = 2
)

// queryHelicone: POST /v1/request/query.
func (s *server) queryHelicone(w http.ResponseWriter, r *http.Request, tenant string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxQueryBody))
	if err != nil {
		writeHeliconeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: larger than %d bytes or unreadable", maxQueryBody))
		return
	}
	q, perr := parseHeliconeQuery(body)
	if perr != nil {
		writeHeliconeError(w, http.StatusBadRequest, perr.name+": "+perr.why)
		return
	}
	if s.o.Query == nil {
		writeHeliconeError(w, http.StatusServiceUnavailable, "query API needs ClickHouse")
		return
	}
	out := []heliconeRow{}
	if !q.none && q.Limit > 0 {
		if !s.tenantQueries.acquire(tenant, maxTenantQueries) {
			writeHeliconeError(w, http.StatusServiceUnavailable, "too many of this tenant's queries in flight; retry")
			return
		}
		defer s.tenantQueries.release(tenant)
		select {
		case s.queries <- struct{}{}:
			defer func() { <-s.queries }()
		default:
			writeHeliconeError(w, http.StatusServiceUnavailable, "too many queries in flight; retry")
			return
		}
		rows, err := s.o.Query.QueryHelicone(r.Context(), tenant, q.HeliconeQuery)
		if err != nil {
			s.o.Logger.Error("api: helicone query failed", "err", err)
			writeHeliconeError(w, http.StatusServiceUnavailable, "query failed: ClickHouse unavailable or overloaded")
			return
		}
		for _, row := range rows {
			out = append(out, toHeliconeRow(row))
		}
	}
	writeHeliconeData(w, http.StatusOK, out)
}
