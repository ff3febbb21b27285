package headers

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSetSorted(t *testing.T) {
	h := List{{":method", "GET"}, {":path", "/"}, {"a", "1"}, {"z", "2"}}
	h.SetSorted("x-envoy-attempt-count", "1")
	h.SetSorted("x-envoy-attempt-count", "2")
	h.SetSorted("0", "first")
	want := List{{":method", "GET"}, {":path", "/"}, {"0", "first"}, {"a", "1"}, {"x-envoy-attempt-count", "2"}, {"z", "2"}}
	if d := cmp.Diff(want, h); d != "" {
		t.Errorf("headers (-want +got):\n%s", d)
	}
}
