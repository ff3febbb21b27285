package chstore

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/tollgate-dev/tollgate/record"
)

// v1Payload is a version 1 payload, the layout of the binaries before the
// retry, workload and policy fields: a spool they left behind holds
// records like it. It was written once, by the version 1 encoder, from
// fullRecord(), whose version 1 fields must therefore stay as they are.
// (testdata/fuzz/FuzzDecodeRecord/v1-payload is the same record with a
// short response body.)
func v1Payload(t *testing.T) []byte {
	t.Helper()
	p, err := os.ReadFile(filepath.Join("testdata", "spool-payload-v1.bin"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCodecReadsV1: a spool written by the previous binary replays, the
// fields it did not know zero.
func TestCodecReadsV1(t *testing.T) {
	want := fullRecord()
	want.Attempts, want.RetryPolicy = 0, ""
	want.WorkloadNamespace, want.WorkloadServiceAccount, want.WorkloadName = "", "", ""
	want.PolicyRule, want.PolicyDecision = "", ""
	want.ModelOverride, want.Warnings, want.ProxyKeyID = "", "", ""
	want.UsageSource, want.CacheSimilarity = "", 0
	p := v1Payload(t)
	got, err := decodeRecord(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("v1 payload:\n got %+v\nwant %+v", got, want)
	}
	// The new layouts only append: version 1 is a prefix of the latest.
	v2 := appendRecord(nil, fullRecord())
	if v2[0] != codecVersion || !bytes.Equal(v2[1:len(p)], p[1:]) {
		t.Error("the latest version does not extend version 1")
	}
	for n := range len(p) {
		if _, err := decodeRecord(p[:n]); err == nil {
			t.Fatalf("v1 prefix of %d/%d bytes decoded without error", n, len(p))
		}
	}
	for _, v := range []byte{0, codecVersion + 1, 0xff} {
		q := append([]byte{v}, v2[1:]...)
		if _, err := decodeRecord(q); err == nil {
			t.Errorf("payload version %d accepted", v)
		}
	}
}

// TestCodecReadsV2: a spool written before model_override, warnings and
// proxy_key_id (version 2: the version 5 layout without its last four
// strings and similarity) replays.
func TestCodecReadsV2(t *testing.T) {
	want := fullRecord()
	want.ModelOverride, want.Warnings, want.ProxyKeyID, want.UsageSource, want.CacheSimilarity = "", "", "", "", 0
	p := appendRecord(nil, want) // ends with four empty strings, one byte each, and 4 bytes of similarity
	v2 := append([]byte{2}, p[1:len(p)-8]...)
	got, err := decodeRecord(v2)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("v2 payload:\n got %+v\nwant %+v", got, want)
	}
}

// TestCodecReadsV3: a spool written before usage_source (version 3: the
// version 5 layout without its last string and similarity) replays,
// usage_source "".
func TestCodecReadsV3(t *testing.T) {
	want := fullRecord()
	want.UsageSource, want.CacheSimilarity = "", 0
	p := appendRecord(nil, want) // usage_source "" is one byte, then 4 of similarity
	v3 := append([]byte{3}, p[1:len(p)-5]...)
	got, err := decodeRecord(v3)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("v3 payload:\n got %+v\nwant %+v", got, want)
	}
}

// TestCodecV4UsageSource: usage_source round-trips, and a version 4
// payload (the version 5 layout without the similarity) is a version 3
// one with it appended.
func TestCodecV4UsageSource(t *testing.T) {
	for _, src := range []string{"", record.UsageProvider, record.UsageEstimated} {
		want := fullRecord()
		want.UsageSource, want.CacheSimilarity = src, 0
		p5 := appendRecord(nil, want)
		p := append([]byte{4}, p5[1:len(p5)-4]...)
		got, err := decodeRecord(p)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("usage_source %q:\n got %+v\nwant %+v", src, got, want)
		}
		base := fullRecord()
		base.UsageSource, base.CacheSimilarity = "", 0
		v3 := appendRecord(nil, base) // usage_source "" is one byte, then 4 of similarity
		if !bytes.Equal(p[1:len(v3)-5], v3[1:len(v3)-5]) {
			t.Errorf("usage_source %q: version 4 does not extend version 3", src)
		}
		if _, err := decodeRecord(p[:len(p)-1]); err == nil {
			t.Errorf("usage_source %q: a cut version 4 payload decoded", src)
		}
	}
}

// TestCodecV5CacheSimilarity: cache_similarity round-trips, a version 5
// payload is a version 4 one with it appended, and a cut one is refused.
func TestCodecV5CacheSimilarity(t *testing.T) {
	for _, sim := range []float32{0, 0.9731, 1} {
		want := fullRecord()
		want.CacheSimilarity = sim
		p := appendRecord(nil, want)
		if p[0] != 5 {
			t.Fatalf("payload version %d, want 5", p[0])
		}
		got, err := decodeRecord(p)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("cache_similarity %v:\n got %+v\nwant %+v", sim, got, want)
		}
		v4 := append([]byte{4}, p[1:len(p)-4]...)
		if got, err := decodeRecord(v4); err != nil || got.CacheSimilarity != 0 || got.UsageSource != want.UsageSource {
			t.Errorf("version 4 prefix: %v, %+v", err, got)
		}
		for cut := 1; cut < 4; cut++ {
			if _, err := decodeRecord(p[:len(p)-cut]); err == nil {
				t.Errorf("cache_similarity %v: a version 5 payload cut by %d bytes decoded", sim, cut)
			}
		}
	}
}

// FuzzDecodeRecord: spool files come from disk, where anything can happen
// to them. Decoding never panics, and whatever decodes encodes to a
// payload that decodes to the same bytes again (NaN costs included).
func FuzzDecodeRecord(f *testing.F) {
	small := fullRecord()
	small.ResponseBody = "short"
	f.Add(appendRecord(nil, small))
	f.Add(appendRecord(nil, &record.Record{}))
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := decodeRecord(p)
		if err != nil {
			return
		}
		q := appendRecord(nil, r)
		r2, err := decodeRecord(q)
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if q2 := appendRecord(nil, r2); !bytes.Equal(q, q2) {
			t.Fatalf("unstable round trip:\n%x\n%x", q, q2)
		}
	})
}
