package semcache

import (
	"fmt"
	"testing"
)

func unit(dims, at int) []float32 {
	v := make([]float32, dims)
	v[at%dims] = 1
	return v
}

// The bound over all scopes drops the oldest entry of any scope; the
// per-scope bound the oldest of that scope; a sweep keeps what is live and
// the order they go in.
func TestIndexBounds(t *testing.T) {
	x := newIndex(3, 4)
	for i := range 6 { // scopes a, b, c, a, b, c
		x.add(fmt.Sprint("s", i%3), fmt.Sprint("e", i), unit(8, i), 1e12)
	}
	if x.size() != 4 {
		t.Fatalf("size %d, want the global bound 4", x.size())
	}
	for i, want := range []bool{false, false, true, true, true, true} {
		_, found := x.nearest(fmt.Sprint("s", i%3), unit(8, i), 0)
		m, _ := x.nearest(fmt.Sprint("s", i%3), unit(8, i), 0)
		if got := found && m.ID == fmt.Sprint("e", i) && m.Similarity == 1; got != want {
			t.Errorf("e%d found %v, want %v", i, got, want)
		}
	}
	// Per scope: a fourth entry of s0 drops its oldest live one (e3) — and,
	// over the global bound, the oldest overall (e2).
	for i := 6; i < 9; i++ {
		x.add("s0", fmt.Sprint("e", i), unit(8, i), 1e12)
	}
	if m, ok := x.nearest("s0", unit(8, 3), 0); ok && m.ID == "e3" {
		t.Error("e3 outlived its scope's bound")
	}
	x.sweep(0)
	if x.size() != 4 || x.slots != 4 {
		t.Errorf("after sweep: %d live, %d slots, want 4 and 4", x.size(), x.slots)
	}
	for i := 6; i < 9; i++ {
		if m, ok := x.nearest("s0", unit(8, i), 0); !ok || m.ID != fmt.Sprint("e", i) {
			t.Errorf("e%d lost: %v", i, m)
		}
	}
	// Expired entries go at the sweep.
	x.add("s9", "old", unit(8, 1), 5)
	x.sweep(10)
	if _, ok := x.nearest("s9", unit(8, 1), 0); ok {
		t.Error("an expired entry survived the sweep")
	}
}
