package app

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/tidwall/gjson"

	"github.com/tollgate-dev/tollgate/internal/devtest"
	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/mockprovider"
	"github.com/tollgate-dev/tollgate/provider"
	"github.com/tollgate-dev/tollgate/storage/chstore/chtest"
)

// The full stack: `tollgate dev --redis … --clickhouse …` against the
// private servers `make test` starts. A record must land in ClickHouse with
// the mock's usage and its price; the cache must work across two instances
// sharing one Redis.
func TestStackLogsToClickHouseAndCachesInRedis(t *testing.T) {
	redisURL := testenv.RedisURL(t)
	chURL, conn, db := chtest.EmptyDatabase(t, "tollgate_app")
	args := slices.Concat([]string{"--redis", redisURL, "--clickhouse", chURL}, generousStoreTimeouts)
	args = slices.Clip(args) // each instance appends its own spool folder
	a := startDev(t, append(args, "--spool-dir", t.TempDir())...)
	b := startDev(t, append(args, "--spool-dir", t.TempDir())...)

	seed := uuid.NewString() // a fresh cache key per run
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"what does the stack log"}]}`
	first, second := uuid.NewString(), uuid.NewString()
	headers := func(id string) map[string]string {
		return map[string]string{"Helicone-Cache-Enabled": "true", "Helicone-Cache-Seed": seed,
			"Helicone-Request-Id": id, "Helicone-User-Id": "dora", "Helicone-Property-Env": "prod"}
	}
	r1, _ := call{path: "/v1/chat/completions", body: body, headers: headers(first)}.do(t, a)
	// The entry is written after the last reply to the client: wait for
	// it, as a client's next call usually would.
	devtest.WaitForCounter(t, a.addrs["http"], "tollgate_cache_fills_total", 1)
	r2, _ := call{path: "/v1/chat/completions", body: body, headers: headers(second)}.do(t, b)
	if r1.Header.Get("Helicone-Cache") != "MISS" || r2.Header.Get("Helicone-Cache") != "HIT" {
		t.Fatalf("two instances on one Redis: %q then %q", r1.Header.Get("Helicone-Cache"), r2.Header.Get("Helicone-Cache"))
	}
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	if err := b.stop(); err != nil {
		t.Fatal(err)
	}

	type row struct {
		ID       string  `ch:"id"`
		Status   int32   `ch:"status"`
		User     string  `ch:"user_id"`
		Env      string  `ch:"env"`
		Prompt   int64   `ch:"prompt_tokens"`
		Done     int64   `ch:"completion_tokens"`
		Cost     float64 `ch:"cost_usd"`
		Hit      uint8   `ch:"cache_hit"`
		Ref      string  `ch:"cache_reference_id"`
		ReqBody  string  `ch:"request_body"`
		Provider string  `ch:"provider"`
	}
	var rows []row
	query := `SELECT toString(request_id) AS id, status, user_id, properties.value[indexOf(properties.key, 'env')] AS env,
		prompt_tokens, completion_tokens, cost_usd, cache_hit, cache_reference_id, request_body, provider
		FROM ` + db + `.requests FINAL ORDER BY cache_hit`
	// Both instances flushed on stop; the background migration may have
	// raced the first insert, in which case the writer retries from its spool.
	testenv.Eventually(t, 30*time.Second, func() error {
		rows = rows[:0]
		if err := conn.Select(context.Background(), &rows, query); err != nil {
			return err
		}
		if len(rows) != 2 {
			return fmt.Errorf("rows in ClickHouse: %v, want 2", rows)
		}
		return nil
	})
	// gpt-4o-mini: 5 prompt words × 0.15 + 12 completion tokens × 0.60 USD
	// per million = (0.75 + 7.2) / 1e6.
	const missCost = 0.00000795
	usage := provider.Usage{PromptTokens: mockprovider.PromptTokens([]byte(body)), CompletionTokens: mockprovider.CompletionTokens}
	miss, hit := rows[0], rows[1]
	if miss.ID != first || miss.Status != 200 || miss.User != "dora" || miss.Env != "prod" || miss.Provider != "openai" ||
		miss.Prompt != usage.PromptTokens || miss.Done != usage.CompletionTokens || !sameCost(miss.Cost, missCost) ||
		!strings.Contains(miss.ReqBody, "what does the stack log") {
		t.Fatalf("miss row %+v", miss)
	}
	if hit.ID != second || hit.Hit != 1 || hit.Ref != first || hit.Cost != 0 || hit.Prompt != usage.PromptTokens {
		t.Fatalf("hit row %+v", hit)
	}

	// The API of a running instance reads the same table and takes feedback.
	c := startDev(t, append(args, "--spool-dir", t.TempDir())...)
	list := get(t, c.api("/v1/requests?user=dora&property=env=prod"))
	if gjson.Get(list, "requests.#").Int() != 2 {
		t.Fatalf("GET /v1/requests: %s", list)
	}
	resp, err := http.Post(c.api("/v1/request/"+first+"/feedback"), "application/json", strings.NewReader(`{"rating": true}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("feedback: %v %v", resp, err)
	}
	resp.Body.Close()
	one := get(t, c.api("/v1/requests/"+first))
	if !strings.Contains(one, "what does the stack log") || gjson.Get(one, "rating").Raw != "true" {
		t.Fatalf("GET /v1/requests/{id}: %s", one)
	}
}
