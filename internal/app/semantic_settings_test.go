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

// OpenAI's text-embedding-3 models are asked for 256 dimensions unless
// the setting says otherwise; other models keep their own length.
func TestSemanticDims(t *testing.T) {
	for _, c := range []struct {
		model   string
		setting int
		want    int
	}{
		{"text-embedding-3-small", 0, 256},
		{"text-embedding-3-large", 1024, 1024},
		{"nomic-embed-text", 0, 0},
		{"nomic-embed-text", 512, 512},
	} {
		if got := semanticDims(c.model, c.setting); got != c.want {
			t.Errorf("semanticDims(%q, %d) = %d, want %d", c.model, c.setting, got, c.want)
		}
	}
	if semanticDimensions(-1) == nil || semanticDimensions(100000) == nil || semanticDimensions(0) != nil {
		t.Error("semanticDimensions bounds")
	}
}
