package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/tollgate-dev/tollgate/helicone"
)

// manualLogHeaders reads the Helicone-* settings of a manual-logger call
// from two places, as Helicone does: providerRequest.meta, an object of
// Helicone-* header names to values (what Helicone's async loggers send),
// and the call's own headers (what its manual-logger helpers send). Both
// go through helicone.Headers.Add, so properties, user, session, request
// id, prompt id, omit switches and the rest mean what they mean on a
// proxied call. A name in both takes the header's value: Helicone builds
// its headers from meta and then sets every request header over them
// (worker/src/lib/managers/AsyncLogManager.ts, mergeHeaders).
//
// Helicone-Auth is never taken from meta: the caller's key is in the
// request's headers, and a body does not choose the tenant.
func manualLogHeaders(meta json.RawMessage, h http.Header) (helicone.Headers, error) {
	merged, err := metaHeaders(meta)
	if err != nil {
		return helicone.Headers{}, err
	}
	fromHeader := make(map[string]bool, len(h))
	for name, values := range h {
		if len(values) == 0 {
			continue
		}
		key := strings.ToLower(name)
		merged[key] = values[len(values)-1] // the last of a repeated header, as before
		fromHeader[key] = true
	}
	var hh helicone.Headers
	keys := make([]string, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	slices.Sort(keys) // a deterministic order for Add's first-wins and warnings
	for _, k := range keys {
		if err := hh.Add(k, merged[k]); err != nil {
			if !fromHeader[k] {
				return hh, fmt.Errorf("providerRequest.meta: %w", err)
			}
			return hh, err
		}
	}
	return hh, nil
}

// metaHeaders turns providerRequest.meta into lowercase header names and
// values. Helicone passes the object to the Headers constructor, which
// makes every value a string (numbers and booleans as JavaScript writes
// them) and joins names that differ only in case with ", "; objects and
// arrays, which would become "[object Object]" there, are left out here.
func metaHeaders(meta json.RawMessage) (map[string]string, error) {
	out := map[string]string{}
	if isEmptyJSON(meta) {
		return out, nil
	}
	if firstNonSpace(meta) != '{' {
		return nil, fmt.Errorf("providerRequest.meta: must be a JSON object of Helicone-* header names to values")
	}
	dec := json.NewDecoder(bytes.NewReader(meta))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("providerRequest.meta: %v", err)
	}
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		var v string
		switch x := m[name].(type) {
		case string:
			v = x
		case json.Number:
			v = x.String()
		case bool:
			v = fmt.Sprint(x)
		case nil:
			v = "null"
		default:
			continue
		}
		key := strings.ToLower(strings.TrimSpace(name))
		if key == "" || key == helicone.Auth {
			continue
		}
		if prev, ok := out[key]; ok {
			v = prev + ", " + v
		}
		out[key] = v
	}
	return out, nil
}
