package chstore

import (
	"bytes"
	"encoding/binary"
	"math"
	"reflect"
	"testing"

	"github.com/tollgate-dev/tollgate/record"
)

// appendRecordV1 writes the version 1 payload, the layout of the binaries
// before the retry, workload and policy fields: a spool they left behind
// looks like this.
func appendRecordV1(b []byte, r *record.Record) []byte {
	b = append(b, 1)
	b = appendString(b, r.RequestID)
	b = binary.AppendVarint(b, r.CreatedAt.UnixNano())
	for _, s := range []string{r.Tenant, r.UserID, r.SessionID, r.SessionPath, r.SessionName, r.RequestName} {
		b = appendString(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(r.Properties)))
	for _, p := range r.Properties {
		b = appendString(b, p.Key)
		b = appendString(b, p.Value)
	}
	for _, s := range []string{r.Provider, r.Model, r.ResponseModel, r.Method, r.Path, r.TargetURL} {
		b = appendString(b, s)
	}
	b = binary.AppendVarint(b, int64(r.Status))
	var flags byte
	if r.Stream {
		flags |= 1
	}
	if r.CacheHit {
		flags |= 2
	}
	if r.RateLimited {
		flags |= 4
	}
	b = append(b, flags)
	for _, n := range []int64{r.PromptTokens, r.CompletionTokens, r.CachedTokens, r.CacheWriteTokens, r.ReasoningTokens} {
		b = binary.AppendVarint(b, n)
	}
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(r.CostUSD))
	b = binary.AppendVarint(b, r.LatencyMs)
	b = binary.AppendVarint(b, r.TTFTMs)
	b = appendString(b, r.CacheReferenceID)
	b = appendString(b, r.PromptID)
	b = binary.AppendVarint(b, int64(r.PromptVersion))
	b = binary.AppendVarint(b, int64(r.FallbackIndex))
	b = appendString(b, r.RequestBody)
	b = appendString(b, r.ResponseBody)
	return appendString(b, r.Error)
}

// TestCodecReadsV1: a spool written by the previous binary replays, the
// fields it did not know zero.
func TestCodecReadsV1(t *testing.T) {
	want := fullRecord()
	want.Attempts, want.RetryPolicy = 0, ""
	want.WorkloadNamespace, want.WorkloadServiceAccount, want.WorkloadName = "", "", ""
	want.PolicyRule, want.PolicyDecision = "", ""
	p := appendRecordV1(nil, fullRecord())
	got, err := decodeRecord(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("v1 payload:\n got %+v\nwant %+v", got, want)
	}
	// The new layout only appends: version 1 is a prefix of version 2.
	v2 := appendRecord(nil, fullRecord())
	if v2[0] != 2 || !bytes.Equal(v2[1:len(p)], p[1:]) {
		t.Error("version 2 does not extend version 1")
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

// FuzzDecodeRecord: spool files come from disk, where anything can happen
// to them. Decoding never panics, and whatever decodes encodes to a
// payload that decodes to the same bytes again (NaN costs included).
func FuzzDecodeRecord(f *testing.F) {
	small := fullRecord()
	small.ResponseBody = "short"
	f.Add(appendRecordV1(nil, small))
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
