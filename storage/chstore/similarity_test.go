package chstore

import (
	"math"
	"testing"
)

// The cache_similarity column holds [0, 1] only.
func TestSimilarityClamped(t *testing.T) {
	for in, want := range map[float32]float32{-0.5: 0, 0: 0, 0.97: 0.97, 1: 1, 1.0000001: 1, float32(math.Inf(1)): 1} {
		if got := similarity(in); got != want {
			t.Errorf("similarity(%v) = %v, want %v", in, got, want)
		}
	}
	if got := similarity(float32(math.NaN())); got != 0 {
		t.Errorf("similarity(NaN) = %v", got)
	}
}
