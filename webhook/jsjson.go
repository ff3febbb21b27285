package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strconv"
	"unicode/utf8"
)

// Helicone's documented receiver (docs/features/webhooks.mdx in
// Helicone/helicone) does not sign the bytes it received: it signs
// JSON.stringify(req.body), the payload parsed by Express and written out
// again by JavaScript. A payload verifies there only if it already is what
// JSON.stringify writes: no white space, JavaScript's key order, its string
// escapes and its number format. Go's encoding/json differs on all but the
// first (it escapes <, >, & and U+2028, and keeps the provider's number
// text), so the payload is written by the functions below, and a provider
// body embedded in it is re-written by them too.

// appendJSString appends s quoted as JSON.stringify quotes it. Invalid
// UTF-8 becomes U+FFFD, so that every receiver decodes the same text.
func appendJSString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, "\uFFFD"...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
			continue
		}
		switch c {
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			if c < 0x20 {
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			} else {
				b = append(b, c)
			}
		}
		i++
	}
	return append(b, '"')
}

// appendJSNumber appends f as JavaScript's Number.prototype.toString writes
// it: the shortest text that reads back as f, with an exponent below 1e-6
// and from 1e21 on. NaN and the infinities are null, as JSON.stringify
// writes them; -0 is 0.
func appendJSNumber(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	if f == 0 {
		return append(b, '0')
	}
	abs := math.Abs(f)
	if abs >= 1e-6 && abs < 1e21 {
		return strconv.AppendFloat(b, f, 'f', -1, 64)
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, 'e', -1, 64)
	// Go writes e-07 and e+21; JavaScript e-7 and e+21.
	if e := bytes.IndexByte(b[start:], 'e'); e >= 0 {
		e += start
		if len(b) > e+3 && b[e+2] == '0' {
			b = append(b[:e+2], b[e+3:]...)
		}
	}
	return b
}

var errNotContainer = errors.New("not a JSON object or array")

// appendJSJSON appends the JSON object or array raw as
// JSON.stringify(JSON.parse(raw)) would write it. It fails on anything
// else, and on text that JavaScript would read differently from Go (a lone
// UTF-16 surrogate escape): such a body is sent as a string instead.
func appendJSJSON(b []byte, raw string) ([]byte, error) {
	if hasLoneSurrogate(raw) {
		return b, errors.New("lone surrogate escape")
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return b, err
	}
	if d, ok := tok.(json.Delim); !ok || (d != '{' && d != '[') {
		return b, errNotContainer
	}
	v, err := readJS(dec, tok)
	if err != nil {
		return b, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return b, errors.New("text after the JSON value")
	}
	return v.append(b), nil
}

// jsValue is a parsed JSON value as JavaScript holds it.
type jsValue struct {
	kind   byte // '{', '[', 's' (string), 'n' (number), 'l' (literal: true, false, null)
	text   string
	num    float64
	keys   []string // objects, in JavaScript's order once sorted by orderKeys
	values map[string]*jsValue
	items  []*jsValue
}

func readJS(dec *json.Decoder, tok json.Token) (*jsValue, error) {
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			v := &jsValue{kind: '['}
			for dec.More() {
				next, err := dec.Token()
				if err != nil {
					return nil, err
				}
				item, err := readJS(dec, next)
				if err != nil {
					return nil, err
				}
				v.items = append(v.items, item)
			}
			_, err := dec.Token() // ]
			return v, err
		}
		v := &jsValue{kind: '{', values: map[string]*jsValue{}}
		for dec.More() {
			keyTok, err := dec.Token()
			if err != nil {
				return nil, err
			}
			key, _ := keyTok.(string)
			next, err := dec.Token()
			if err != nil {
				return nil, err
			}
			item, err := readJS(dec, next)
			if err != nil {
				return nil, err
			}
			// A repeated key keeps its first place and its last value.
			if _, dup := v.values[key]; !dup {
				v.keys = append(v.keys, key)
			}
			v.values[key] = item
		}
		orderKeys(v.keys)
		_, err := dec.Token() // }
		return v, err
	case string:
		return &jsValue{kind: 's', text: t}, nil
	case json.Number:
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil, err
		}
		return &jsValue{kind: 'n', num: f}, nil // out of range: ±Inf, written null as JavaScript does
	case bool:
		if t {
			return &jsValue{kind: 'l', text: "true"}, nil
		}
		return &jsValue{kind: 'l', text: "false"}, nil
	case nil:
		return &jsValue{kind: 'l', text: "null"}, nil
	}
	return nil, errors.New("unexpected JSON token")
}

// orderKeys puts keys in the order JavaScript enumerates an object's own
// properties: array indices ("0", "1", … below 2³²−1) first, by value,
// then the others in the order they were added.
func orderKeys(keys []string) {
	n := 0
	for _, k := range keys {
		if _, ok := arrayIndex(k); ok {
			n++
		}
	}
	if n == 0 {
		return
	}
	indices := make([]string, 0, n)
	others := make([]string, 0, len(keys)-n)
	for _, k := range keys {
		if _, ok := arrayIndex(k); ok {
			indices = append(indices, k)
		} else {
			others = append(others, k)
		}
	}
	// Insertion sort: objects with numeric keys are small in practice.
	for i := 1; i < len(indices); i++ {
		for j := i; j > 0; j-- {
			a, _ := arrayIndex(indices[j-1])
			c, _ := arrayIndex(indices[j])
			if a <= c {
				break
			}
			indices[j-1], indices[j] = indices[j], indices[j-1]
		}
	}
	copy(keys, indices)
	copy(keys[n:], others)
}

// arrayIndex reports whether k is the canonical text of an array index.
func arrayIndex(k string) (uint64, bool) {
	if k == "" || len(k) > 10 || (k[0] == '0' && len(k) > 1) {
		return 0, false
	}
	v, err := strconv.ParseUint(k, 10, 64)
	if err != nil || v >= 1<<32-1 {
		return 0, false
	}
	return v, true
}

func (v *jsValue) append(b []byte) []byte {
	switch v.kind {
	case '{':
		b = append(b, '{')
		for i, k := range v.keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSString(b, k)
			b = append(b, ':')
			b = v.values[k].append(b)
		}
		return append(b, '}')
	case '[':
		b = append(b, '[')
		for i, item := range v.items {
			if i > 0 {
				b = append(b, ',')
			}
			b = item.append(b)
		}
		return append(b, ']')
	case 's':
		return appendJSString(b, v.text)
	case 'n':
		return appendJSNumber(b, v.num)
	}
	return append(b, v.text...)
}

// hasLoneSurrogate reports whether raw escapes half of a UTF-16 surrogate
// pair without the other half: JavaScript keeps it (and JSON.stringify
// writes it back as \udxxx), Go reads it as U+FFFD, so the two would sign
// different text.
func hasLoneSurrogate(raw string) bool {
	for i := 0; i+1 < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		if raw[i+1] != 'u' {
			i++ // an escaped character, possibly a backslash
			continue
		}
		r, ok := hex4(raw, i+2)
		if !ok {
			continue
		}
		switch {
		case r >= 0xD800 && r < 0xDC00:
			if lo, ok := hex4(raw, i+8); ok && raw[i+6] == '\\' && raw[i+7] == 'u' && lo >= 0xDC00 && lo < 0xE000 {
				i += 11
				continue
			}
			return true
		case r >= 0xDC00 && r < 0xE000:
			return true
		}
		i += 5
	}
	return false
}

func hex4(s string, at int) (rune, bool) {
	if at+4 > len(s) {
		return 0, false
	}
	v, err := strconv.ParseUint(s[at:at+4], 16, 16)
	return rune(v), err == nil
}
