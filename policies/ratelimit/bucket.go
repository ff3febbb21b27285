package ratelimit

import (
	"math"
	"time"

	"github.com/tollgate-dev/tollgate/helicone"
)

// BucketRef names a token bucket and its shape. Capacity tokens refill
// continuously over Window; a bucket never seen (or expired, which happens
// only once it is full again) starts full.
type BucketRef struct {
	Key      string
	Capacity float64
	Window   time.Duration
}

// BucketTake asks a bucket to admit a call. The call is admitted when the
// balance is positive and at least Cost; Cost is then taken. Cost 0 only
// checks the balance (the cents unit, charged after the call).
type BucketTake struct {
	BucketRef
	Cost float64
}

// BucketOutcome is one bucket's state after the store's Admit, in the
// order of gate.StoreAdmit.Buckets. Tokens are taken only when the call is
// not a hit and every bucket is Allowed.
type BucketOutcome struct {
	Allowed   bool          // this bucket alone would admit the call
	Remaining float64       // balance after the take (if any); may be negative for cents
	Wait      time.Duration // until a call of the same Cost would be admitted; 0 if now
}

// ResetSeconds is when, in whole seconds rounded up, the next call of the
// same kind would be admitted; 0 when it would be now. A refused call always
// reports at least 1.
func (o BucketOutcome) ResetSeconds() int64 {
	s := int64(math.Ceil(o.Wait.Seconds()))
	if s < 1 && !o.Allowed {
		s = 1
	}
	return s
}

// Caller is whose buckets a call draws from.
type Caller struct {
	// Tenant owns the buckets. Policy.Bucket takes it as given (the gate
	// resolves "" first); egress Decision.Limits reads "" as
	// policies.DefaultTenant.
	Tenant string
	UserID string // Helicone-User-Id, else the body's user; for s=user
	// Header returns the first value of a request header by lowercase
	// name, "" when absent (nil: no headers); for s=<property>. A lookup
	// rather than helicone.Headers' Properties: a bucket has always been
	// keyed by the first of repeated property headers, while the parsed
	// list is sorted for the record in place, the last value winning.
	Header func(name string) string
}

// Property is the value of the Helicone-Property-<name> header, "" when
// absent.
func (c *Caller) Property(name string) string {
	if c.Header == nil {
		return ""
	}
	return c.Header(helicone.PropertyPrefix + name)
}

// SegmentValue is the value of c that selects its bucket under p: "" for
// an organization-wide policy, else the user id or the property value,
// with ok false when c has none. Helicone then does not limit the call at
// all (extractSegmentIdentifier in
// worker/src/lib/rate-limit/segmentExtractor.ts, failing open in
// bucketClient.ts): the gate does the same rather than share one bucket
// between every call without the value.
func (p Policy) SegmentValue(c *Caller) (value string, ok bool) {
	switch p.Segment {
	case SegmentOrg:
		return "", true
	case SegmentUser:
		return c.UserID, c.UserID != ""
	default:
		v := c.Property(p.Segment)
		return v, v != ""
	}
}

// Bucket is where c's tokens live under p: one per (tenant, segment,
// segment value, unit). The policy's quota and window are deliberately not
// part of the key (DESIGN §4): a client that changes its quota keeps its
// balance, clamped to the new capacity.
func (p Policy) Bucket(c *Caller) BucketRef {
	var seg string
	switch p.Segment {
	case SegmentOrg:
		seg = "org"
	case SegmentUser:
		// A call without a user shares the "" bucket: leaving the id out
		// must not be a way around the limit.
		seg = "user:" + KeyPart(c.UserID)
	default:
		seg = "p:" + p.Segment + ":" + KeyPart(c.Property(p.Segment))
	}
	return BucketRef{
		Key:      TenantKeyPrefix(c.Tenant) + "rl:" + string(p.Unit) + ":" + seg,
		Capacity: float64(p.Quota),
		Window:   time.Duration(p.Window) * time.Second,
	}
}

// Take is what a call takes from b under p: one token for a request unit;
// for cents only a balance check (cost 0), the real cost being charged
// after the call.
func (p Policy) Take(b BucketRef) BucketTake {
	cost := 1.0
	if p.Unit == UnitCents {
		cost = 0
	}
	return BucketTake{BucketRef: b, Cost: cost}
}
