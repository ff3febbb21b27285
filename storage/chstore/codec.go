package chstore

import (
	"encoding/binary"
	"errors"
	"math"
	"time"

	"github.com/tollgate-dev/tollgate/record"
)

// The spool stores records in a compact binary form (JSON would escape
// every quote of the JSON bodies and cost several times the CPU):
//
//	payload = version byte (2), then the fields of record.Record in
//	          the order appendRecord writes them: strings as uvarint
//	          length + bytes, integers as zig-zag varints, cost_usd as
//	          8 bytes little-endian IEEE 754, created_at as varint Unix
//	          nanoseconds, the three booleans as one flag byte, properties
//	          as a uvarint count then key, value pairs.
//
// Version 1 ended at error; version 2 appends attempts, retry_policy, the
// workload identity and the policy rule and decision after it, and version
// 3 model_override, warnings and proxy_key_id after those, version 4
// usage_source after them, and version 5 cache_similarity (4 bytes,
// little-endian IEEE 754 float32) last, so each old layout stays a prefix
// of the new one.
//
// A new Record field gets a new payload version, its fields appended at
// the end; the decoder keeps reading older versions (missing fields stay
// zero), so a spool written by an older binary still replays.
const codecVersion = 5

const (
	flagStream = 1 << iota
	flagCacheHit
	flagRateLimited
)

var errDecode = errors.New("malformed spool record")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendRecord appends r's payload to b.
func appendRecord(b []byte, r *record.Record) []byte {
	b = append(b, codecVersion)
	b = appendString(b, r.RequestID)
	b = binary.AppendVarint(b, r.CreatedAt.UnixNano())
	b = appendString(b, r.Tenant)
	b = appendString(b, r.UserID)
	b = appendString(b, r.SessionID)
	b = appendString(b, r.SessionPath)
	b = appendString(b, r.SessionName)
	b = appendString(b, r.RequestName)
	b = binary.AppendUvarint(b, uint64(len(r.Properties)))
	for _, p := range r.Properties {
		b = appendString(b, p.Key)
		b = appendString(b, p.Value)
	}
	b = appendString(b, r.Provider)
	b = appendString(b, r.Model)
	b = appendString(b, r.ResponseModel)
	b = appendString(b, r.Method)
	b = appendString(b, r.Path)
	b = appendString(b, r.TargetURL)
	b = binary.AppendVarint(b, int64(r.Status))
	var flags byte
	if r.Stream {
		flags |= flagStream
	}
	if r.CacheHit {
		flags |= flagCacheHit
	}
	if r.RateLimited {
		flags |= flagRateLimited
	}
	b = append(b, flags)
	b = binary.AppendVarint(b, r.PromptTokens)
	b = binary.AppendVarint(b, r.CompletionTokens)
	b = binary.AppendVarint(b, r.CachedTokens)
	b = binary.AppendVarint(b, r.CacheWriteTokens)
	b = binary.AppendVarint(b, r.ReasoningTokens)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(r.CostUSD))
	b = binary.AppendVarint(b, r.LatencyMs)
	b = binary.AppendVarint(b, r.TTFTMs)
	b = appendString(b, r.CacheReferenceID)
	b = appendString(b, r.PromptID)
	b = binary.AppendVarint(b, int64(r.PromptVersion))
	b = binary.AppendVarint(b, int64(r.FallbackIndex))
	b = appendString(b, r.RequestBody)
	b = appendString(b, r.ResponseBody)
	b = appendString(b, r.Error)
	// version 2
	b = binary.AppendVarint(b, int64(r.Attempts))
	b = appendString(b, r.RetryPolicy)
	b = appendString(b, r.WorkloadNamespace)
	b = appendString(b, r.WorkloadServiceAccount)
	b = appendString(b, r.WorkloadName)
	b = appendString(b, r.PolicyRule)
	b = appendString(b, r.PolicyDecision)
	// version 3
	b = appendString(b, r.ModelOverride)
	b = appendString(b, r.Warnings)
	b = appendString(b, r.ProxyKeyID)
	// version 4
	b = appendString(b, r.UsageSource)
	// version 5
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(r.CacheSimilarity))
	return b
}

// decoder reads a payload; the first error sticks and every later read
// returns zero values, so decodeRecord checks once at the end.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errDecode
	}
	d.b = nil
}

func (d *decoder) u8() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) i32() int32 {
	v := d.varint()
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail()
		return 0
	}
	return int32(v)
}

func (d *decoder) str() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) f32() float32 {
	if len(d.b) < 4 {
		d.fail()
		return 0
	}
	v := math.Float32frombits(binary.LittleEndian.Uint32(d.b))
	d.b = d.b[4:]
	return v
}

func (d *decoder) f64() float64 {
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

// decodeRecord parses one payload. It never panics on bad input.
func decodeRecord(p []byte) (*record.Record, error) {
	d := &decoder{b: p}
	version := d.u8()
	if d.err != nil {
		return nil, d.err
	}
	if version < 1 || version > codecVersion {
		return nil, errors.New("spool record: unknown payload version")
	}
	r := &record.Record{}
	r.RequestID = d.str()
	r.CreatedAt = time.Unix(0, d.varint()).UTC()
	r.Tenant = d.str()
	r.UserID = d.str()
	r.SessionID = d.str()
	r.SessionPath = d.str()
	r.SessionName = d.str()
	r.RequestName = d.str()
	if n := d.uvarint(); n > 0 {
		// Each property takes at least two bytes: a bogus count cannot
		// make us allocate more than the payload could hold.
		if n > uint64(len(d.b))/2 {
			return nil, errDecode
		}
		r.Properties = make([]record.Property, n)
		for i := range r.Properties {
			r.Properties[i].Key = d.str()
			r.Properties[i].Value = d.str()
		}
	}
	r.Provider = d.str()
	r.Model = d.str()
	r.ResponseModel = d.str()
	r.Method = d.str()
	r.Path = d.str()
	r.TargetURL = d.str()
	r.Status = d.i32()
	flags := d.u8()
	r.Stream = flags&flagStream != 0
	r.CacheHit = flags&flagCacheHit != 0
	r.RateLimited = flags&flagRateLimited != 0
	r.PromptTokens = d.varint()
	r.CompletionTokens = d.varint()
	r.CachedTokens = d.varint()
	r.CacheWriteTokens = d.varint()
	r.ReasoningTokens = d.varint()
	r.CostUSD = d.f64()
	r.LatencyMs = d.varint()
	r.TTFTMs = d.varint()
	r.CacheReferenceID = d.str()
	r.PromptID = d.str()
	r.PromptVersion = d.i32()
	r.FallbackIndex = d.i32()
	r.RequestBody = d.str()
	r.ResponseBody = d.str()
	r.Error = d.str()
	if version >= 2 {
		r.Attempts = d.i32()
		r.RetryPolicy = d.str()
		r.WorkloadNamespace = d.str()
		r.WorkloadServiceAccount = d.str()
		r.WorkloadName = d.str()
		r.PolicyRule = d.str()
		r.PolicyDecision = d.str()
	}
	if version >= 3 {
		r.ModelOverride = d.str()
		r.Warnings = d.str()
		r.ProxyKeyID = d.str()
	}
	if version >= 4 {
		r.UsageSource = d.str()
	}
	if version >= 5 {
		r.CacheSimilarity = d.f32()
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, errDecode
	}
	return r, nil
}
