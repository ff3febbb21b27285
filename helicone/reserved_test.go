package helicone

import (
	"strings"
	"testing"
)

// Tollgate writes its own outcomes as tollgate-* properties (the screen's,
// the token-limit handler's); a client's Helicone-Property-Tollgate-… header
// must not forge one, or an audit query such as
// properties['tollgate-moderation'] = 'passed' would count unchecked calls.
func TestReservedPropertiesAreDropped(t *testing.T) {
	var h Headers
	for _, kv := range [][2]string{
		{"helicone-property-tollgate-moderation", "passed"},
		{"helicone-property-tollgate-token-limit-sent", "1"},
		{"helicone-property-team", "search"},
	} {
		if err := h.Add(kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	props := h.SortedProperties()
	if len(props) != 1 || props[0].Key != "team" {
		t.Fatalf("properties %+v, want only team", props)
	}
	if v := h.Warnings.Value(); strings.Count(v, "reserved for Tollgate") != 2 {
		t.Fatalf("warnings %q", v)
	}
}
