package semcache

import (
	"fmt"
	"sync"
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
func nearest(x *index, scope string, vec []float32, now int64) (Match, bool) {
	ms := x.nearest(scope, vec, now, 1)
	if len(ms) == 0 {
		return Match{}, false
	}
	return ms[0], true
}

func TestIndexBounds(t *testing.T) {
	x := newIndex(3, 4)
	for i := range 6 { // scopes a, b, c, a, b, c
		x.add(fmt.Sprint("s", i%3), fmt.Sprint("e", i), unit(8, i), 1e12)
	}
	if x.size() != 4 {
		t.Fatalf("size %d, want the global bound 4", x.size())
	}
	for i, want := range []bool{false, false, true, true, true, true} {
		m, found := nearest(x, fmt.Sprint("s", i%3), unit(8, i), 0)
		if got := found && m.ID == fmt.Sprint("e", i) && m.Similarity == 1; got != want {
			t.Errorf("e%d found %v, want %v", i, got, want)
		}
	}
	// Per scope: a fourth entry of s0 drops its oldest live one (e3) — and,
	// over the global bound, the oldest overall (e2).
	for i := 6; i < 9; i++ {
		x.add("s0", fmt.Sprint("e", i), unit(8, i), 1e12)
	}
	if m, ok := nearest(x, "s0", unit(8, 3), 0); ok && m.ID == "e3" {
		t.Error("e3 outlived its scope's bound")
	}
	x.sweep(0)
	if x.size() != 4 || x.slots != 4 {
		t.Errorf("after sweep: %d live, %d slots, want 4 and 4", x.size(), x.slots)
	}
	for i := 6; i < 9; i++ {
		if m, ok := nearest(x, "s0", unit(8, i), 0); !ok || m.ID != fmt.Sprint("e", i) {
			t.Errorf("e%d lost: %v", i, m)
		}
	}
	// Expired entries go at the sweep.
	x.add("s9", "old", unit(8, 1), 5)
	x.sweep(10)
	if _, ok := nearest(x, "s9", unit(8, 1), 0); ok {
		t.Error("an expired entry survived the sweep")
	}
}

// Lookups, additions (as the follower and finished calls make them),
// removals and sweeps run at once without a race (go test -race), and
// the index keeps its bounds and finds what was added.
func TestIndexConcurrentUse(t *testing.T) {
	x := newIndex(50, 200)
	var wg sync.WaitGroup
	const rounds = 400
	for w := range 3 { // adders, over ten scopes
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				x.add(fmt.Sprint("s", i%10), fmt.Sprint(w, "-", i), unit(16, i), 1e12)
				if i%7 == 0 {
					x.remove(fmt.Sprint("s", i%10), fmt.Sprint(w, "-", i-7))
				}
			}
		}()
	}
	for range 4 { // lookups
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				for _, m := range x.nearest(fmt.Sprint("s", i%10), unit(16, i), 0, 3) {
					if m.ID == "" || m.Similarity > 1.0001 {
						t.Errorf("bad match %+v", m)
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // the periodic sweep
		defer wg.Done()
		for range rounds / 10 {
			x.sweep(0)
		}
	}()
	wg.Wait()
	if x.size() > 200 {
		t.Errorf("size %d over the bound 200", x.size())
	}
	x.add("s0", "last", unit(16, 3), 1e12)
	if m, ok := nearest(x, "s0", unit(16, 3), 0); !ok || m.Similarity != 1 {
		t.Errorf("the last entry is not found: %+v", m)
	}
}

// nearest returns the best candidates in order.
func TestIndexNearestOrder(t *testing.T) {
	x := newIndex(10, 10)
	x.add("s", "a", []float32{1, 0}, 1e12)
	x.add("s", "b", []float32{0.6, 0.8}, 1e12)
	x.add("s", "c", []float32{0, 1}, 1e12)
	ms := x.nearest("s", []float32{1, 0}, 0, 3)
	if len(ms) != 3 || ms[0].ID != "a" || ms[1].ID != "b" || ms[2].ID != "c" {
		t.Errorf("nearest = %+v", ms)
	}
	x.remove("s", "a")
	if ms := x.nearest("s", []float32{1, 0}, 0, 3); len(ms) != 2 || ms[0].ID != "b" {
		t.Errorf("after removing a: %+v", ms)
	}
}
