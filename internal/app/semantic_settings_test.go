package app

import (
	"math"
	"testing"
)

// A score setting (the semantic cache threshold, the screening
// thresholds) refuses NaN as it refuses any value outside (0, 1].
func TestUnitIntervalRefusesNaN(t *testing.T) {
	for _, v := range []float64{math.NaN(), 0, -0.1, 1.01, math.Inf(1)} {
		if unitInterval(v) == nil {
			t.Errorf("unitInterval(%v) accepted", v)
		}
	}
	for _, v := range []float64{0.01, 0.95, 1} {
		if err := unitInterval(v); err != nil {
			t.Errorf("unitInterval(%v): %v", v, err)
		}
	}
}
