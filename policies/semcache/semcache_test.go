package semcache_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/mockprovider"
	"github.com/tollgate-dev/tollgate/policies/semcache"
)

// bagOfWords embeds like the mock provider: words hashed into 64
// dimensions, so that a paraphrase with the same content words is close.
type bagOfWords struct{}

func (bagOfWords) Embed(_ context.Context, text string) ([]float32, error) {
	return mockprovider.EmbedText(text, 64), nil
}

type failing struct{ err error }

func (f failing) Embed(ctx context.Context, _ string) ([]float32, error) {
	if f.err == nil {
		<-ctx.Done() // slower than any timeout
		return nil, ctx.Err()
	}
	return nil, f.err
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newCache(t *testing.T, store semcache.Store, e semcache.Embedder, max int, clk *clock) (*semcache.Cache, *semcache.Metrics) {
	t.Helper()
	m := semcache.NewMetrics(nil)
	c, err := semcache.New(semcache.Options{Store: store, Embedder: e, MaxEntriesPerScope: max,
		EmbedTimeout: 20 * time.Millisecond, Now: clk.now, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	return c, m
}

func add(t *testing.T, c *semcache.Cache, scope, id, text string, ttl time.Duration) {
	t.Helper()
	vec, _, err := c.Lookup(context.Background(), scope, text, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	c.Add(context.Background(), scope, id, vec, []byte("answer "+id), ttl)
}

func lookup(t *testing.T, c *semcache.Cache, scope, text string) string {
	t.Helper()
	_, m, err := c.Lookup(context.Background(), scope, text, 0.8)
	if err != nil {
		t.Fatal(err)
	}
	if m == nil {
		return ""
	}
	return string(c.Entry(context.Background(), scope, m.ID))
}

func TestParaphraseHitsOtherQuestionAndScopeMiss(t *testing.T) {
	clk := &clock{time.Unix(1000, 0)}
	c, _ := newCache(t, semcache.NewMemStore(0, clk.now), bagOfWords{}, 10, clk)
	add(t, c, "tenant-a", "r1", "capital city of france", time.Hour)
	if got := lookup(t, c, "tenant-a", "france capital city"); got != "answer r1" {
		t.Errorf("paraphrase: got %q, want the first answer", got)
	}
	if got := lookup(t, c, "tenant-a", "boiling point of water"); got != "" {
		t.Errorf("another question hit %q", got)
	}
	if got := lookup(t, c, "tenant-b", "capital city of france"); got != "" {
		t.Errorf("another scope hit %q", got)
	}
}

func TestEntriesExpireWithTheirTTL(t *testing.T) {
	clk := &clock{time.Unix(1000, 0)}
	c, _ := newCache(t, semcache.NewMemStore(0, clk.now), bagOfWords{}, 10, clk)
	add(t, c, "s", "r1", "capital city of france", time.Minute)
	clk.t = clk.t.Add(61 * time.Second)
	if got := lookup(t, c, "s", "capital city of france"); got != "" {
		t.Errorf("expired entry hit %q", got)
	}
}

func TestMemoryBoundEvictsOldest(t *testing.T) {
	clk := &clock{time.Unix(1000, 0)}
	c, _ := newCache(t, semcache.NewMemStore(0, clk.now), bagOfWords{}, 2, clk)
	add(t, c, "s", "r1", "alpha beta gamma", time.Hour)
	add(t, c, "s", "r2", "delta epsilon zeta", time.Hour)
	add(t, c, "s", "r3", "eta theta iota", time.Hour)
	if got := lookup(t, c, "s", "alpha beta gamma"); got != "" {
		t.Errorf("the oldest entry should be evicted, got %q", got)
	}
	for _, q := range []string{"delta epsilon zeta", "eta theta iota"} {
		if got := lookup(t, c, "s", q); got == "" {
			t.Errorf("%q: a kept entry missed", q)
		}
	}
}

func TestReplicaStartedLaterReadsTheLog(t *testing.T) {
	clk := &clock{time.Unix(1000, 0)}
	store := semcache.NewMemStore(0, clk.now)
	first, _ := newCache(t, store, bagOfWords{}, 10, clk)
	add(t, first, "s", "r1", "capital city of france", time.Hour)
	later, _ := newCache(t, store, bagOfWords{}, 10, clk)
	later.Follow(context.Background())
	if got := lookup(t, later, "s", "france capital city"); got != "answer r1" {
		t.Errorf("later replica: got %q", got)
	}
	// And what the later one adds, the first finds after following.
	add(t, later, "s", "r2", "boiling point of water", time.Hour)
	first.Follow(context.Background())
	if got := lookup(t, first, "s", "water boiling point"); got != "answer r2" {
		t.Errorf("first replica: got %q", got)
	}
}

func TestEmbeddingsDownOrSlowIsAnErrorCounted(t *testing.T) {
	clk := &clock{time.Unix(1000, 0)}
	for _, tc := range []struct {
		name   string
		e      semcache.Embedder
		result string
	}{
		{"slow", failing{}, "timeout"},
		{"down", failing{errors.New("connection refused")}, "error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, m := newCache(t, semcache.NewMemStore(0, clk.now), tc.e, 10, clk)
			vec, match, err := c.Lookup(context.Background(), "s", "anything", 0.9)
			if err == nil || vec != nil || match != nil {
				t.Fatalf("Lookup = %v, %v, %v; want an error", vec, match, err)
			}
			if got := m.EmbedCount(tc.result); got != 1 {
				t.Errorf("embeddings{result=%q} = %v, want 1", tc.result, got)
			}
		})
	}
}

func TestPromptText(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi there"}]}`,
			"system: Be brief.\nuser: Hi there"},
		{`{"model":"m","system":"S","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image","source":{}},{"type":"text","text":"b"}]}]}`,
			"system: S\nuser: a\nb"},
		{`{"model":"m","input":"x"}`, "input: x"},
		{`{"model":"m"}`, ""},
		{`not json`, ""},
	} {
		if got := semcache.PromptText([]byte(tc.body)); got != tc.want {
			t.Errorf("PromptText(%s) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

// The embeddings key never reaches an error (and so a log), even from an
// endpoint that echoes the request's headers back in its error answer;
// the dimensions setting is sent.
func TestHTTPEmbedderNeverLeaksItsKey(t *testing.T) {
	var sawDims float64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		sawDims, _ = body["dimensions"].(float64)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = fmt.Fprintf(w, `{"error":"bad key %s"}`, r.Header.Get("authorization"))
	}))
	defer srv.Close()
	var logs strings.Builder
	c, err := semcache.New(semcache.Options{Store: semcache.NewMemStore(0, nil),
		Embedder: &semcache.HTTPEmbedder{BaseURL: srv.URL, Model: "m", APIKey: "sk-secret-key", Dimensions: 256},
		Logger:   slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Lookup(context.Background(), "s", "x", 0.9)
	if err == nil {
		t.Fatal("an error answer gave a vector")
	}
	if strings.Contains(fmt.Sprint(err), "sk-secret-key") || strings.Contains(logs.String(), "sk-secret-key") {
		t.Errorf("the key leaked: err %v, logs %s", err, logs.String())
	}
	if !strings.Contains(logs.String(), "status 401") {
		t.Errorf("the failure was not logged: %q", logs.String())
	}
	if sawDims != 256 {
		t.Errorf("dimensions sent: %v, want 256", sawDims)
	}
}

// The stream of additions is trimmed by age; entries' TTLs are capped.
func TestTrimDropsOldAdditions(t *testing.T) {
	clk := &clock{time.Unix(1000, 0)}
	store := semcache.NewMemStore(0, clk.now)
	c, err := semcache.New(semcache.Options{Store: store, Embedder: bagOfWords{}, MaxTTL: time.Hour, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	add(t, c, "s", "r1", "capital of france", 100*time.Hour) // capped at an hour
	clk.t = clk.t.Add(2*time.Hour + time.Second)
	c.Trim(context.Background())
	if got, _, _ := store.SemanticSince(context.Background(), "", 10); len(got) != 0 {
		t.Errorf("after the trim: %d additions kept", len(got))
	}
}

type sized int

func (n sized) Embed(context.Context, string) ([]float32, error) {
	v := make([]float32, n)
	v[0] = 1
	return v, nil
}

// A rolling deploy from one embeddings model (or dimension count) to
// another: replicas of both share the store, and neither wipes the
// other's scopes nor compares vectors with them.
func TestTwoModelsKeepTheirOwnScopes(t *testing.T) {
	clk := &clock{time.Unix(1000, 0)}
	store := semcache.NewMemStore(0, clk.now)
	mk := func(dims int) *semcache.Cache {
		c, err := semcache.New(semcache.Options{Store: store, Embedder: sized(dims), Model: "m", Dimensions: dims,
			MaxEntriesPerScope: 10, Now: clk.now})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := mk(8), mk(16)
	add(t, a, "s", "r1", "x", time.Hour)
	add(t, b, "s", "r2", "x", time.Hour)
	a.Follow(context.Background())
	b.Follow(context.Background())
	add(t, a, "s", "r3", "y", time.Hour) // a's scope after b's entry: still a's
	if got := lookup(t, a, "s", "x"); got != "answer r3" && got != "answer r1" {
		t.Errorf("model a: %q, want one of its own answers", got)
	}
	if got := lookup(t, b, "s", "x"); got != "answer r2" {
		t.Errorf("model b: %q, want its own answer", got)
	}
	fresh := mk(8)
	fresh.Follow(context.Background())
	if got := lookup(t, fresh, "s", "x"); got != "answer r3" && got != "answer r1" {
		t.Errorf("a new replica of model a: %q", got)
	}
}

// A client reusing a Helicone-Request-Id cannot overwrite an earlier
// answer: each entry gets an id of its own.
func TestReusedRequestIDDoesNotOverwrite(t *testing.T) {
	clk := &clock{time.Unix(1000, 0)}
	c, _ := newCache(t, semcache.NewMemStore(0, clk.now), bagOfWords{}, 10, clk)
	ctx := context.Background()
	v1, _, _ := c.Lookup(ctx, "s", "capital of france", 0.95)
	c.Add(ctx, "s", "same-id", v1, []byte("Paris"), time.Hour)
	v2, _, _ := c.Lookup(ctx, "s", "buy crypto now", 0.95)
	c.Add(ctx, "s", "same-id", v2, []byte("poison"), time.Hour)
	if got := lookup(t, c, "s", "capital of france"); got != "Paris" {
		t.Errorf("the first answer became %q", got)
	}
}

// A forged log record (an id outside its scope, a NaN or oversized
// vector) is skipped; an entry id of another scope is never read.
func TestForgedRecordsAreSkipped(t *testing.T) {
	clk := &clock{time.Unix(1000, 0)}
	store := semcache.NewMemStore(0, clk.now)
	c, _ := newCache(t, store, sized(8), 10, clk)
	ctx := context.Background()
	add(t, c, "victim", "r1", "x", time.Hour)
	_, m, _ := c.Lookup(ctx, "victim", "x", 0.5)
	if m == nil {
		t.Fatal("no entry")
	}
	scope := m.ID[:strings.LastIndex(m.ID, ":")]
	vec := func(f float32, n int) []float32 { v := make([]float32, n); v[0] = f; return v }
	exp := clk.t.Add(time.Hour).UnixMilli()
	for _, e := range []semcache.Entry{
		{Scope: scope, ID: "other:secret", Vector: vec(1, 8), ExpiresUnixMs: exp},
		{Scope: scope, ID: scope + ":nan", Vector: vec(float32(math.NaN()), 8), ExpiresUnixMs: exp},
		{Scope: scope, ID: scope + ":huge", Vector: vec(1, semcache.MaxDimensions+1), ExpiresUnixMs: exp},
	} {
		if err := store.AddSemantic(ctx, e, []byte("forged"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	fresh, _ := newCache(t, store, sized(8), 10, clk)
	fresh.Follow(ctx)
	if got := lookup(t, fresh, "victim", "x"); got != "answer r1" {
		t.Errorf("lookup = %q, want the real entry", got)
	}
	if b := fresh.Entry(ctx, "victim", "other:secret"); b != nil {
		t.Errorf("an id outside the scope was read: %q", b)
	}
	if _, m, _ := fresh.Lookup(ctx, "victim", "x", 0.5); m == nil || m.Similarity > 1 || m.Similarity < 0 {
		t.Errorf("similarity %+v outside [0, 1]", m)
	}
}

// A NaN threshold is no threshold: the default applies (NaN would make
// every comparison false, so nothing could ever hit).
func TestNaNThresholdGetsTheDefault(t *testing.T) {
	c, err := semcache.New(semcache.Options{Store: semcache.NewMemStore(0, nil), Embedder: bagOfWords{},
		Threshold: float32(math.NaN())})
	if err != nil {
		t.Fatal(err)
	}
	if c.Threshold() != semcache.DefaultThreshold {
		t.Errorf("Threshold() = %v", c.Threshold())
	}
}

// goneStore loses the answers named in gone, as Redis does when it
// evicts them before the index knows.
type goneStore struct {
	semcache.Store
	gone func(id string) bool
}

func (s goneStore) SemanticEntry(ctx context.Context, id string) ([]byte, error) {
	if s.gone(id) {
		return nil, nil
	}
	return s.Store.SemanticEntry(ctx, id)
}

// A hit whose answer is gone is removed from the index and the next best
// answers; it does not keep winning.
func TestGoneEntryGivesWayToTheNextBest(t *testing.T) {
	clk := &clock{time.Unix(1000, 0)}
	var lost string
	store := goneStore{semcache.NewMemStore(0, clk.now), func(id string) bool { return id == lost }}
	c, _ := newCache(t, store, bagOfWords{}, 10, clk)
	ctx := context.Background()
	add(t, c, "s", "r1", "capital of france", time.Hour)
	add(t, c, "s", "r2", "capital of france please", time.Hour)
	_, m, _ := c.Lookup(ctx, "s", "capital of france", 0.5)
	if m == nil {
		t.Fatal("no hit")
	}
	lost = m.ID
	body, hit, ok := c.Answer(ctx, "s", m)
	if !ok || string(body) != "answer r2" || hit.ID == lost {
		t.Fatalf("Answer = %q, %+v, %v; want the next best", body, hit, ok)
	}
	if _, m, _ := c.Lookup(ctx, "s", "capital of france", 0.5); m == nil || m.ID == lost {
		t.Errorf("the gone entry still wins: %+v", m)
	}
}
