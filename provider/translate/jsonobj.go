package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
)

// obj is one JSON object of an untrusted body, kept as raw members so every
// key can be checked: a key this package does not know is refused rather than
// silently dropped, since dropping it could change the answer.
type obj struct {
	m    map[string]json.RawMessage
	path string
}

func parseObj(raw []byte, path string) (obj, error) {
	o := obj{path: path}
	if err := json.Unmarshal(raw, &o.m); err != nil {
		return o, invalid(orRoot(path), err)
	}
	if o.m == nil {
		return o, invalid(orRoot(path), fmt.Errorf("want an object"))
	}
	return o, nil
}

func orRoot(path string) string {
	if path == "" {
		return "body"
	}
	return path
}

func (o obj) field(key string) string {
	if key == "" {
		return orRoot(o.path) + `[""]`
	}
	if o.path == "" {
		return key
	}
	return o.path + "." + key
}

// has reports whether key is present and not null.
func (o obj) has(key string) bool {
	v, ok := o.m[key]
	return ok && !isNull(v)
}

func isNull(v json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(v), []byte("null"))
}

// allow refuses the first key (in sorted order, so errors are stable) that is
// not in known.
func (o obj) allow(known ...string) error {
	keys := make([]string, 0, len(o.m))
	for k := range o.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		found := false
		for _, n := range known {
			if k == n {
				found = true
				break
			}
		}
		if !found {
			return unsupported(o.field(k), "no equivalent on the other provider")
		}
	}
	return nil
}

// decode unmarshals key into v when present and not null.
func (o obj) decode(key string, v any) (bool, error) {
	if !o.has(key) {
		return false, nil
	}
	if err := json.Unmarshal(o.m[key], v); err != nil {
		return true, invalid(o.field(key), err)
	}
	return true, nil
}

func (o obj) str(key string) (string, error) {
	var s string
	_, err := o.decode(key, &s)
	return s, err
}

// isString reports whether key holds a JSON string.
func (o obj) isString(key string) bool {
	v := bytes.TrimSpace(o.m[key])
	return len(v) > 0 && v[0] == '"'
}

// array splits key into its raw elements.
func (o obj) array(key string) ([]json.RawMessage, error) {
	var a []json.RawMessage
	_, err := o.decode(key, &a)
	return a, err
}

func index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}
