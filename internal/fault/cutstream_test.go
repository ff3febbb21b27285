package fault

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/mockprovider"
)

// An expensive model, so a budget of a few cents holds a handful of calls.
const (
	cutModel = "o1-pro"
	cutBody  = `{"model":"o1-pro","stream":true,"messages":[{"role":"user","content":"tell me something long that I will not wait for"}]}`
	// cutAfter: data lines the client reads before it hangs up: the
	// role chunk and 6 of the mock's 12 words. The mock sends exactly
	// those and then holds the stream until the hang-up reaches it
	// (x-mock-stall-after), so however slowly the client reads, the rest
	// of the answer never reaches Tollgate first (which would log a 200).
	cutAfter = 7
)

// TestCutStreamCost: hanging up on a stream is not a way around a cents
// budget. Streams the client cuts after half the answer are logged with
// usage_source 'estimated' and a cost, and charged that cost: a budget
// (Helicone-RateLimit-Policy with u=cents) refuses them after as many calls
// as it refuses full streams of the same cost. Without the charge
// every cut stream would be admitted.
func TestCutStreamCost(t *testing.T) {
	rd := testenv.StartRedis(t)
	db := newLogDB(t, testenv.ClickHouseURL(t), "cut")
	g := newStack(t, "--clickhouse", db.url, "--redis", rd.URL()).start(t)
	db.waitMigrated()
	rc := redis.NewClient(&redis.Options{Addr: rd.Addr()})
	t.Cleanup(func() { rc.Close() })
	budget := size(5, 50) // cents
	limit := 20 * budget  // calls: a budget never refusing is a failure, not a hang

	cut := spend(t, g, rc, cutBody, budget, limit, func(_ int, h http.Header) { h.Set(mockprovider.HeaderStallAfter, strconv.Itoa(cutAfter)) }, cutAfter)
	if len(cut.admitted) == limit {
		t.Fatalf("a %d-cent budget admitted all %d cut streams: hanging up bypasses it", budget, limit)
	}
	cutRows := costs(t, db, cut.admitted)
	seen := map[costRow]int{}
	var typical costRow // the most frequent tokens of a cut stream
	for id, r := range cutRows {
		if r.source != "estimated" || r.cost <= 0 || r.status == 200 {
			t.Fatalf("cut stream %s logged as %+v, want usage_source estimated, a cost and a client-cancelled status", id, r)
		}
		if seen[r]++; seen[r] > seen[typical] {
			typical = r
		}
	}

	// Full streams of exactly those costs, one for one: the mock counts a
	// prompt word as a token, so a prompt of as many words and the
	// completion tokens of cut stream i (x-mock-completion-tokens) price
	// full stream i the same. (Every cut stream streams the same chunks,
	// so their costs should agree; each is matched all the same.)
	fullBody := fmt.Sprintf(`{"model":%q,"stream":true,"messages":[{"role":"user","content":%q}]}`,
		cutModel, strings.TrimSpace(strings.Repeat("word ", int(typical.prompt))))
	if p := mockprovider.PromptTokens([]byte(fullBody)); p != typical.prompt {
		t.Fatalf("full prompt of %d tokens, want %d", p, typical.prompt)
	}
	full := spend(t, g, rc, fullBody, budget, limit, func(i int, h http.Header) {
		like := typical
		if i < len(cut.admitted) {
			like = cutRows[cut.admitted[i]]
		}
		if like.prompt != typical.prompt {
			t.Fatalf("cut streams with prompts of %d and %d tokens", like.prompt, typical.prompt)
		}
		h.Set(mockprovider.HeaderCompletionTokens, strconv.FormatInt(like.completion, 10))
	}, 0)
	fullRows := costs(t, db, full.admitted)
	g.stop()

	// What the bucket should admit given the costs logged: calls go
	// through while the balance is positive, each charged its cost.
	predict := func(ids []string, rows map[string]costRow) int {
		bal, n := float64(budget), 0
		for _, id := range ids {
			if bal <= 0 {
				break
			}
			bal -= rows[id].cost * 100
			n++
		}
		if n == len(ids) && bal > 0 {
			n++ // the budget refused a call it still had room for
		}
		return n
	}
	wantCut, wantFull := predict(cut.admitted, cutRows), predict(full.admitted, fullRows)
	t.Logf("%d-cent budget: %d cut streams (estimated usage %v), %d full streams at $%.6f; %d distinct cut costs",
		budget, len(cut.admitted), seen, len(full.admitted), fullRows[full.admitted[0]].cost, len(seen))
	all := append(append([]string(nil), cut.sent...), full.sent...)
	c := db.waitRows(all, 60*time.Second)
	lost, _ := c.lost(all)
	report(t, figures{scenario: "cut streams under a cents budget", sent: len(all), answered: len(cut.admitted) + len(full.admitted),
		rows: c.final, lost: lost, duplicated: c.duplicated(),
		note: fmt.Sprintf("%d-cent budget: %d cut streams admitted, %d full ones of the same cost", budget, len(cut.admitted), len(full.admitted))})
	if len(cut.admitted) != wantCut || len(full.admitted) != wantFull {
		t.Errorf("admitted %d cut and %d full streams; their logged costs allow %d and %d", len(cut.admitted), len(full.admitted), wantCut, wantFull)
	}
	for i, id := range full.admitted {
		r := fullRows[id]
		if i < len(cut.admitted) && r.cost != cutRows[cut.admitted[i]].cost || r.source != "provider" {
			t.Fatalf("full stream %d logged as %+v, want cut stream %d's cost from the provider's usage", i, r, i)
		}
	}
	if len(cut.admitted) != len(full.admitted) {
		t.Errorf("the budget admitted %d cut streams and %d full ones of the same cost", len(cut.admitted), len(full.admitted))
	}
	if len(full.admitted) < 2 {
		t.Errorf("only %d calls within the budget: the scenario proves nothing", len(full.admitted))
	}
	if lost != 0 || c.duplicated() != 0 {
		t.Errorf("%d calls without a row, %d duplicated", lost, c.duplicated())
	}
}

// spent is one run of calls against a budget.
type spent struct {
	sent, admitted []string
}

// spend sends streams under a budget-cent policy, one at a time, for one
// fresh user, until one is refused (429) or limit were admitted. Each
// stream is read whole (cutAt 0) or cut after cutAt data lines. Before the
// next call it waits until the bucket in Redis shows the charge: the
// charge follows the end of the call, and the next call's check must see
// it.
func spend(t *testing.T, g *tollgate, rc *redis.Client, body string, budget, limit int, steer func(i int, h http.Header), cutAt int) spent {
	t.Helper()
	user := "fault-" + uuid.NewString()
	key := "" // the bucket, found after the first call
	var s spent
	for len(s.admitted) < limit {
		before := float64(budget)
		if key != "" {
			before = bucketTokens(t, rc, key)
		}
		id := uuid.NewString()
		s.sent = append(s.sent, id)
		req, _ := http.NewRequest(http.MethodPost, g.url("/v1/chat/completions"), strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Helicone-Request-Id", id)
		req.Header.Set("Helicone-User-Id", user)
		req.Header.Set("Helicone-RateLimit-Policy", fmt.Sprintf("%d;w=86400;u=cents;s=user", budget))
		steer(len(s.admitted), req.Header)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return s
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream answered %s", resp.Status)
		}
		lines, done := readStream(resp.Body, cutAt)
		resp.Body.Close() // a hang-up when the stream is not done
		if cutAt == 0 && !done || cutAt > 0 && (done || lines < cutAt) {
			t.Fatalf("read %d data lines (done %v), want the stream %s", lines, done, map[bool]string{true: "cut", false: "whole"}[cutAt > 0])
		}
		s.admitted = append(s.admitted, id)
		if key == "" {
			testenv.Eventually(t, 30*time.Second, func() error {
				keys, err := rc.Keys(context.Background(), "tg:*:rl:cents:user:"+user).Result()
				if err != nil || len(keys) != 1 {
					return fmt.Errorf("cents bucket of %s: %v %v", user, keys, err)
				}
				key = keys[0]
				return nil
			})
		}
		testenv.Eventually(t, 30*time.Second, func() error {
			if now := bucketTokens(t, rc, key); now >= before {
				return fmt.Errorf("bucket %s at %v cents, not yet charged (was %v)", key, now, before)
			}
			return nil
		})
	}
	return s
}

// readStream reads SSE data lines until [DONE] or, when cutAt > 0, until
// cutAt lines were read.
func readStream(r io.Reader, cutAt int) (lines int, done bool) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			return lines, true
		}
		lines++
		if cutAt > 0 && lines >= cutAt {
			return lines, false
		}
	}
	return lines, false
}

// bucketTokens is the balance stored in a token bucket (hash field t).
func bucketTokens(t *testing.T, rc *redis.Client, key string) float64 {
	t.Helper()
	v, err := rc.HGet(context.Background(), key, "t").Float64()
	if err != nil {
		t.Fatalf("HGET %s t: %v", key, err)
	}
	return v
}

// costRow is what ClickHouse logged of a stream.
type costRow struct {
	cost               float64
	prompt, completion int64
	source             string
	status             int32
}

// costs waits for the rows of ids and returns their cost and usage source.
func costs(t *testing.T, db *logDB, ids []string) map[string]costRow {
	t.Helper()
	db.waitRows(ids, 60*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := db.conn.Query(ctx, "SELECT toString(request_id), cost_usd, prompt_tokens, completion_tokens, usage_source, status FROM "+db.name+".requests FINAL WHERE toString(request_id) IN "+quoteIDs(ids))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]costRow{}
	for rows.Next() {
		var id string
		var r costRow
		if err := rows.Scan(&id, &r.cost, &r.prompt, &r.completion, &r.source, &r.status); err != nil {
			t.Fatal(err)
		}
		out[id] = r
	}
	if len(out) != len(ids) {
		t.Fatalf("%d rows for %d calls", len(out), len(ids))
	}
	return out
}
