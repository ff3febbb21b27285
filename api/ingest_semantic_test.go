package api

import (
	"math"
	"testing"

	tollgatev1 "github.com/tollgate-dev/tollgate/proto/tollgate/v1"
)

// cache_similarity reaches the record; a value outside [0, 1] is refused.
func TestIngestCacheSimilarity(t *testing.T) {
	s := &server{o: Options{Now: fixedClock(t0)}}
	rec, field, err := s.fromProto(&tollgatev1.LogRecord{CacheHit: true, CacheSimilarity: 0.97})
	if err != nil || rec.CacheSimilarity != 0.97 {
		t.Fatalf("%s: %v, %+v", field, err, rec)
	}
	for _, bad := range []float32{-0.1, 1.5, float32(math.NaN())} {
		if _, field, err := s.fromProto(&tollgatev1.LogRecord{CacheSimilarity: bad}); err == nil || field != "record.cache_similarity" {
			t.Errorf("cache_similarity %v: %s %v, want refused", bad, field, err)
		}
	}
}
