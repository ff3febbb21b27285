package alerts_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/alerts"
	"github.com/tollgate-dev/tollgate/record"
)

// TestDeliveryFailures: retried within bounds, recorded as not delivered,
// counted, not tried again before the backoff; a webhook's token, host and
// address appear in no error and no log line.
func TestDeliveryFailures(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t)
	c := &clock{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()

	cases := []struct {
		id, url       string
		status        int
		delay         time.Duration
		wantAttempts  int
		wantErrPrefix string
	}{
		{"server-error", rc.URL + "/hook/SECRET-TOKEN-1", 503, 0, 3, "webhook answered HTTP 503"},
		{"rejected", rc.URL + "/hook/SECRET-TOKEN-2", 404, 0, 1, "webhook answered HTTP 404"}, // not retried
		{"slow", rc.URL + "/hook/SECRET-TOKEN-3", 200, 500 * time.Millisecond, 3, "webhook did not answer within 100ms"},
		{"unreachable", closed + "/hook/SECRET-TOKEN-4?key=SECRET-TOKEN-5", 0, 0, 0, "webhook unreachable: dial tcp: connect: connection refused"},
	}
	e.write(t, &record.Record{CreatedAt: t0.Add(-time.Minute), CostUSD: 1})
	for _, tc := range cases {
		rc.set(tc.status, tc.delay)
		r := mustRule(t, fmt.Sprintf(`{"id":%q,"metric":"cost_usd","threshold":0.5,"window":"15m","webhook_url":%q}`, tc.id, tc.url))
		r.File = "alerts.yaml"
		m, reg, logs := e.newManager(t, c, alerts.Options{FileRules: []alerts.Rule{r}, WebhookTimeout: 100 * time.Millisecond})
		evaluate(t, m, c, t0)
		if got := rc.take(); tc.wantAttempts > 0 && len(got) != tc.wantAttempts {
			t.Errorf("%s: %d attempts, want %d", tc.id, len(got), tc.wantAttempts)
		} else if len(got) > 1 && got[0].EventID != got[len(got)-1].EventID {
			t.Errorf("%s: retries carry different event ids", tc.id)
		}
		events, err := m.Events(ctx(t), 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != 1 || events[0].RuleID != tc.id || events[0].Delivered ||
			!strings.HasPrefix(events[0].DeliveryError, tc.wantErrPrefix) {
			t.Errorf("%s: events %+v, want one undelivered with %q", tc.id, events, tc.wantErrPrefix)
		}
		if n := counter(t, reg, "tollgate_alert_delivery_failures_total"); n != 1 {
			t.Errorf("%s: %v delivery failures counted", tc.id, n)
		}
		if strings.Contains(events[0].DeliveryError, "SECRET") || strings.Contains(logs.String(), "SECRET") {
			t.Errorf("%s: webhook URL leaked:\n%s\n%s", tc.id, events[0].DeliveryError, logs)
		}
		_, port, _ := net.SplitHostPort(l.Addr().String())
		if strings.Contains(events[0].DeliveryError, "127.0.0.1") || strings.Contains(events[0].DeliveryError, port) {
			t.Errorf("%s: delivery error names the address: %s", tc.id, events[0].DeliveryError)
		}
		if events[0].Attempts != 1 {
			t.Errorf("%s: %d tries recorded, want 1", tc.id, events[0].Attempts)
		}
		if !strings.Contains(logs.String(), "webhook delivery failed") {
			t.Errorf("%s: failure not logged:\n%s", tc.id, logs)
		}
		// The same incident: no new event, and no retry before the backoff
		// (1h/16).
		rc.set(200, 0)
		evaluate(t, m, c, t0.Add(time.Minute))
		if got := rc.take(); len(got) != 0 {
			t.Errorf("%s: notified again before the backoff", tc.id)
		}
		// clear this rule's events for the next case
		if err := e.conn.Exec(ctx(t), "TRUNCATE TABLE "+e.db+".alert_events"); err != nil {
			t.Fatal(err)
		}
	}
}
