package chquery_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/record"
)

// Exists finds a request of the tenant only, whatever the time its id
// would suggest. Helicone: valhalla/jawn/src/managers/request/RequestManager.ts
// (waitForRequestAndResponse looks the request up by id within the
// caller's organization).
func TestExists(t *testing.T) {
	e := newEnv(t)
	v7 := func(at time.Time) string {
		u, err := uuid.NewV7()
		if err != nil {
			t.Fatal(err)
		}
		// Put at's milliseconds in the first 48 bits, as NewV7 does for now.
		ms := uint64(at.UnixMilli())
		for i := range 6 {
			u[i] = byte(ms >> (40 - 8*i))
		}
		return u.String()
	}
	atID := &record.Record{RequestID: v7(t0), CreatedAt: t0}
	skewed := &record.Record{RequestID: v7(t0), CreatedAt: t0.Add(20 * time.Hour)}
	minted := &record.Record{RequestID: v7(t0.Add(-3 * 24 * time.Hour)), CreatedAt: t0}
	v4 := &record.Record{RequestID: uuid.NewString(), CreatedAt: t0.Add(-400 * 24 * time.Hour)}
	e.write(t, atID, skewed, minted, v4)
	for _, c := range []struct {
		name, id, tenant string
		want             bool
	}{
		{"v7 at its time", atID.RequestID, "acme", true},
		{"v7 within a day", skewed.RequestID, "acme", true},
		{"v7 minted days before the call", minted.RequestID, "acme", true},
		{"v4 a year back", v4.RequestID, "acme", true},
		{"another tenant", atID.RequestID, "other", false},
		{"unknown", uuid.NewString(), "acme", false},
	} {
		got, err := e.q.Exists(ctx(t), c.id, c.tenant)
		if err != nil || got != c.want {
			t.Errorf("%s: %v %v, want %v", c.name, got, err, c.want)
		}
	}
}
