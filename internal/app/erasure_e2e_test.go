package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/internal/devtest"
	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/storage/chstore/chtest"
)

// TestEraseUserThroughTheAPI: `tollgate dev --redis --clickhouse`, a user's
// cached call, DELETE /v1/users/{id}: the erasure goes from pending to
// done on the gateway's own job, the user's row is gone from ClickHouse and
// the cache entry from Redis (the next identical call misses), another
// user's row stays.
func TestEraseUserThroughTheAPI(t *testing.T) {
	erasureGrace = time.Second
	t.Cleanup(func() { erasureGrace = 0 })
	chURL, conn, db := chtest.EmptyDatabase(t, "tollgate_erasure")
	d := startDev(t, append([]string{"--redis", testenv.RedisURL(t), "--clickhouse", chURL, "--spool-dir", t.TempDir()}, generousStoreTimeouts...)...)

	seed := uuid.NewString()
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"erin's secret"}]}`
	ask := func(user string) string {
		r, _ := call{path: "/v1/chat/completions", body: body, headers: map[string]string{
			"Helicone-Cache-Enabled": "true", "Helicone-Cache-Seed": seed + user, "Helicone-User-Id": user}}.do(t, d)
		return r.Header.Get("Helicone-Cache")
	}
	// Each entry is written after the last reply to the client: wait for
	// it, as a client's next call usually would.
	a := ask("erin")
	devtest.WaitForCounter(t, d.addrs["http"], "tollgate_cache_fills_total", 1)
	if b := ask("erin"); a != "MISS" || b != "HIT" {
		t.Fatalf("before: %s then %s", a, b)
	}
	ask("finn")
	devtest.WaitForCounter(t, d.addrs["http"], "tollgate_cache_fills_total", 2)
	rows := func(user string) uint64 {
		var n uint64
		if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".requests WHERE user_id = ?", user).Scan(&n); err != nil {
			t.Log(err) // the table may not exist yet
		}
		return n
	}
	testenv.WaitFor(t, 30*time.Second, "the calls in ClickHouse", func() bool { return rows("erin") == 2 && rows("finn") == 1 })

	req, _ := http.NewRequest(http.MethodDelete, d.api("/v1/users/erin"), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var e struct{ ID, Status string }
	err = json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusAccepted || e.Status != "pending" {
		t.Fatalf("DELETE: %d %+v %v", resp.StatusCode, e, err)
	}
	testenv.Eventually(t, 90*time.Second, func() error {
		resp, err := http.Get(d.api("/v1/erasures/" + e.ID))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var got struct{ Status, Step string }
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			return err
		}
		if got.Status != "done" {
			return fmt.Errorf("%d %+v", resp.StatusCode, got)
		}
		return nil
	})
	if n := rows("erin"); n != 0 {
		t.Errorf("%d rows of erin left", n)
	}
	if n := rows("finn"); n != 1 {
		t.Errorf("finn has %d rows, want 1", n)
	}
	if got := ask("erin"); got != "MISS" {
		t.Errorf("erin's cache entry after the erasure: %s", got)
	}
	if got := ask("finn"); got != "HIT" {
		t.Errorf("finn's cache entry after erin's erasure: %s", got)
	}
}
