package chquery

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/storage/chschema"
)

// The Helicone-compatible request query (POST /v1/request/query): package
// api parses Helicone's filter tree into a Cond over the Fields below; this
// file turns it into SQL. The SQL text depends only on the tree's shape and
// on the fixed fragments of this file, which hold no quote, comment or
// semicolon: every value a client sends is a bound parameter.

// Kind is what a field holds, and so which operators and values it takes.
type Kind int

// The kinds of fields.
const (
	KindText Kind = iota + 1
	KindNumber
	KindTime
	KindBool
)

// Field is a column the query filters or sorts on.
type Field string

// The fields. FieldProperty and FieldScore take a name (Cond.Key).
const (
	FieldRequestID        Field = "request_id"
	FieldCreatedAt        Field = "created_at"
	FieldModel            Field = "model"
	FieldResponseModel    Field = "response_model"
	FieldUserID           Field = "user_id"
	FieldProvider         Field = "provider"
	FieldPath             Field = "path"
	FieldTargetURL        Field = "target_url"
	FieldStatus           Field = "status"
	FieldLatency          Field = "latency_ms"
	FieldTTFT             Field = "ttft_ms"
	FieldCost             Field = "cost_usd"
	FieldPromptTokens     Field = "prompt_tokens"
	FieldCompletionTokens Field = "completion_tokens"
	FieldTotalTokens      Field = "total_tokens"
	FieldCachedTokens     Field = "cached_tokens"
	FieldCacheWriteTokens Field = "cache_write_tokens"
	FieldCacheHit         Field = "cache_hit"
	FieldCacheReferenceID Field = "cache_reference_id"
	FieldPromptID         Field = "prompt_id"
	FieldPromptVersion    Field = "prompt_version"
	FieldSessionID        Field = "session_id"
	FieldSessionName      Field = "session_name"
	FieldSessionPath      Field = "session_path"
	FieldRequestBody      Field = "request_body"
	FieldResponseBody     Field = "response_body"
	FieldProperty         Field = "property"
	FieldScore            Field = "score"
	FieldFeedback         Field = "feedback"
)

type fieldDef struct {
	expr string // SQL over the requests table; "" for the subquery fields
	kind Kind
}

var fields = map[Field]fieldDef{
	FieldRequestID:        {"toString(request_id)", KindText},
	FieldCreatedAt:        {"created_at", KindTime},
	FieldModel:            {"model", KindText},
	FieldResponseModel:    {"response_model", KindText},
	FieldUserID:           {"user_id", KindText},
	FieldProvider:         {"upperUTF8(provider)", KindText}, // Helicone names providers in capitals
	FieldPath:             {"path", KindText},
	FieldTargetURL:        {"target_url", KindText},
	FieldStatus:           {"status", KindNumber},
	FieldLatency:          {"latency_ms", KindNumber},
	FieldTTFT:             {"ttft_ms", KindNumber},
	FieldCost:             {"cost_usd", KindNumber},
	FieldPromptTokens:     {"prompt_tokens", KindNumber},
	FieldCompletionTokens: {"completion_tokens", KindNumber},
	FieldTotalTokens:      {"(prompt_tokens + completion_tokens)", KindNumber},
	FieldCachedTokens:     {"cached_tokens", KindNumber},
	FieldCacheWriteTokens: {"cache_write_tokens", KindNumber},
	FieldCacheHit:         {"cache_hit", KindBool},
	FieldCacheReferenceID: {"cache_reference_id", KindText},
	FieldPromptID:         {"prompt_id", KindText},
	FieldPromptVersion:    {"toString(prompt_version)", KindText},
	FieldSessionID:        {"session_id", KindText},
	FieldSessionName:      {"session_name", KindText},
	FieldSessionPath:      {"session_path", KindText},
	FieldRequestBody:      {"request_body", KindText},
	FieldResponseBody:     {"response_body", KindText},
	// A missing property reads as "", as in Helicone's Map column.
	FieldProperty: {"properties.value[indexOf(properties.key, ?)]", KindText},
	FieldScore:    {"", KindNumber},
	FieldFeedback: {"", KindBool},
}

// KindOf returns a field's kind; ok is false for an unknown field.
func KindOf(f Field) (Kind, bool) {
	d, ok := fields[f]
	return d.kind, ok
}

// Op is a Helicone filter operator.
type Op string

// The operators, by the kinds that take them.
const (
	OpEquals      Op = "equals"       // all kinds
	OpNotEquals   Op = "not-equals"   // text, number
	OpLike        Op = "like"         // text: SQL LIKE, case-sensitive
	OpILike       Op = "ilike"        // text: LIKE, case-insensitive
	OpContains    Op = "contains"     // text: substring, case-insensitive
	OpNotContains Op = "not-contains" // text
	OpGT          Op = "gt"           // number, time
	OpGTE         Op = "gte"
	OpLT          Op = "lt"
	OpLTE         Op = "lte"
)

var kindOps = map[Kind][]Op{
	KindText:   {OpEquals, OpNotEquals, OpLike, OpILike, OpContains, OpNotContains},
	KindNumber: {OpEquals, OpNotEquals, OpGT, OpGTE, OpLT, OpLTE},
	KindTime:   {OpEquals, OpGT, OpGTE, OpLT, OpLTE},
	KindBool:   {OpEquals},
}

// Ops lists the operators a kind takes.
func Ops(k Kind) []Op { return kindOps[k] }

var compare = map[Op]string{OpEquals: "=", OpNotEquals: "!=", OpGT: ">", OpGTE: ">=", OpLT: "<", OpLTE: "<="}

// Cond is a node of the filter tree: a branch (Branch "and" or "or", with
// Left and Right), a leaf (Field set), or, with neither, "all". A leaf's
// Value is a string (text), float64 (number), time.Time (time) or bool.
type Cond struct {
	Branch      string
	Left, Right *Cond
	Field       Field
	Key         string
	Op          Op
	Value       any
}

// sqlBuilder accumulates the WHERE text and its arguments.
type sqlBuilder struct {
	b      strings.Builder
	args   []any
	db     string
	tenant string
}

func (s *sqlBuilder) add(text string, args ...any) {
	s.b.WriteString(text)
	s.args = append(s.args, args...)
}

// HeliconeWhere returns the condition of c over db's requests table for
// tenant, with its arguments: each ? of the text is one argument.
func HeliconeWhere(c *Cond, db, tenant string) (string, []any, error) {
	s := &sqlBuilder{db: db, tenant: tenant}
	if err := s.cond(c, 0); err != nil {
		return "", nil, err
	}
	return s.b.String(), s.args, nil
}

// maxDepth bounds the recursion whatever the caller checked.
const maxDepth = 64

func (s *sqlBuilder) cond(c *Cond, depth int) error {
	if depth > maxDepth {
		return errors.New("filter nested too deeply")
	}
	switch {
	case c == nil || (c.Branch == "" && c.Field == ""):
		s.add("1")
		return nil
	case c.Branch == "and" || c.Branch == "or":
		s.add("(")
		if err := s.cond(c.Left, depth+1); err != nil {
			return err
		}
		s.add(map[string]string{"and": ") AND (", "or": ") OR ("}[c.Branch])
		if err := s.cond(c.Right, depth+1); err != nil {
			return err
		}
		s.add(")")
		return nil
	case c.Branch != "":
		return fmt.Errorf("filter operator %q: want and or or", c.Branch)
	}
	return s.leaf(c)
}

func (s *sqlBuilder) leaf(c *Cond) error {
	def, ok := fields[c.Field]
	if !ok {
		return fmt.Errorf("unknown field %q", c.Field)
	}
	if !validOp(def.kind, c.Op) {
		return fmt.Errorf("field %s: operator %q not supported", c.Field, c.Op)
	}
	v, err := bindValue(def.kind, c.Value)
	if err != nil {
		return fmt.Errorf("field %s: %w", c.Field, err)
	}
	switch c.Field {
	case FieldFeedback:
		// The newest rating of each request: rating is compared after FINAL
		// has picked the newest row (a WHERE on it under FINAL could see an
		// older one); on a tie in created_at the last inserted wins. GLOBAL:
		// on a cluster the subquery runs once, over every shard, and its
		// ids go to the shards of requests (a plain IN there would be
		// refused, or read one shard's feedback); on one server it is IN.
		s.add(fmt.Sprintf("request_id GLOBAL IN (SELECT request_id FROM (SELECT request_id, rating FROM %s FINAL WHERE tenant = ?) WHERE rating = ?)",
			s.db+"."+chschema.FeedbackTable), s.tenant, v)
		return nil
	case FieldScore:
		s.add(fmt.Sprintf("request_id GLOBAL IN (SELECT request_id FROM (SELECT request_id, value FROM %s FINAL WHERE tenant = ? AND name = ?) WHERE value %s ?)",
			s.db+"."+chschema.ScoresTable, compare[c.Op]), s.tenant, c.Key, v)
		return nil
	}
	expr := def.expr
	var exprArgs []any
	if c.Field == FieldProperty {
		exprArgs = []any{c.Key}
	}
	if c.Field == FieldProvider {
		v = strings.ToUpper(v.(string))
	}
	switch c.Op {
	case OpLike:
		s.add(expr+" LIKE ?", append(exprArgs, v)...)
	case OpILike:
		s.add("lowerUTF8("+expr+") LIKE lowerUTF8(?)", append(exprArgs, v)...)
	case OpContains:
		s.add("position(lowerUTF8("+expr+"), lowerUTF8(?)) > 0", append(exprArgs, v)...)
	case OpNotContains:
		s.add("position(lowerUTF8("+expr+"), lowerUTF8(?)) = 0", append(exprArgs, v)...)
	default:
		if def.kind == KindTime {
			s.add(expr+" "+compare[c.Op]+" toDateTime(?)", append(exprArgs, v)...)
		} else {
			s.add(expr+" "+compare[c.Op]+" ?", append(exprArgs, v)...)
		}
	}
	return nil
}

func validOp(k Kind, op Op) bool {
	for _, o := range kindOps[k] {
		if o == op {
			return true
		}
	}
	return false
}

// bindValue checks a leaf's value against its kind and returns what is
// bound: times as Unix seconds (the package's convention), booleans as 0/1.
func bindValue(k Kind, v any) (any, error) {
	switch k {
	case KindText:
		if s, ok := v.(string); ok {
			return s, nil
		}
	case KindNumber:
		if f, ok := v.(float64); ok {
			return f, nil
		}
	case KindTime:
		if t, ok := v.(time.Time); ok {
			return t.Unix(), nil
		}
	case KindBool:
		if b, ok := v.(bool); ok {
			return b2u(b), nil
		}
	}
	return nil, fmt.Errorf("value %v has the wrong type", v)
}
