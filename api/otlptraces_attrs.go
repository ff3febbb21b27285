package api

import (
	"errors"
	"math"
	"strconv"
	"strings"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
)

// The attributes of a span sent to POST /v1/traces (otlptraces.go), read
// by type with an error that says what is wrong with a value.

// attrSet is a span's attributes by key; genAI says one is gen_ai.*.
type attrSet struct {
	m     map[string]*commonpb.AnyValue
	genAI bool
}

func spanAttrs(kvs []*commonpb.KeyValue) attrSet {
	a := attrSet{m: make(map[string]*commonpb.AnyValue, len(kvs))}
	for _, kv := range kvs {
		a.m[kv.GetKey()] = kv.GetValue()
		if strings.HasPrefix(kv.GetKey(), "gen_ai.") {
			a.genAI = true
		}
	}
	return a
}

// str is a string attribute ("" when absent or of another type).
func (a attrSet) str(keys ...string) string {
	for _, k := range keys {
		if v, ok := a.m[k].GetValue().(*commonpb.AnyValue_StringValue); ok && v.StringValue != "" {
			return v.StringValue
		}
	}
	return ""
}

// count is a non-negative integer attribute (an integral double is taken
// too); the error says what is wrong with a value that is there.
func (a attrSet) count(key string) (int64, bool, error) {
	switch v := a.m[key].GetValue().(type) {
	case nil:
		return 0, false, nil
	case *commonpb.AnyValue_IntValue:
		if v.IntValue < 0 {
			return 0, true, errors.New("must not be negative")
		}
		return v.IntValue, true, nil
	case *commonpb.AnyValue_DoubleValue:
		if !(v.DoubleValue >= 0 && v.DoubleValue <= 1<<53) || v.DoubleValue != math.Trunc(v.DoubleValue) {
			return 0, true, errors.New("must be a non-negative integer")
		}
		return int64(v.DoubleValue), true, nil
	case *commonpb.AnyValue_StringValue:
		n, err := strconv.ParseInt(strings.TrimSpace(v.StringValue), 10, 64)
		if err != nil || n < 0 {
			return 0, true, errors.New("must be a non-negative integer")
		}
		return n, true, nil
	}
	return 0, true, errors.New("must be an integer")
}

// number is a finite non-negative number attribute.
func (a attrSet) number(key string) (float64, bool, error) {
	var f float64
	switch v := a.m[key].GetValue().(type) {
	case nil:
		return 0, false, nil
	case *commonpb.AnyValue_DoubleValue:
		f = v.DoubleValue
	case *commonpb.AnyValue_IntValue:
		f = float64(v.IntValue)
	default:
		return 0, true, errors.New("must be a number")
	}
	if !(f >= 0 && f <= math.MaxFloat64) { // NaN and ±Inf too
		return 0, true, errors.New("must be a finite number, not negative")
	}
	return f, true, nil
}

func (a attrSet) boolean(key string) bool {
	v, ok := a.m[key].GetValue().(*commonpb.AnyValue_BoolValue)
	return ok && v.BoolValue
}
