package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/policies/prompt"
)

// The prompt.Store semantics are covered by the conformance suite
// (conformance_test.go: Redis and a Redis Cluster); these tests cover what
// is Redis's own: several replicas publishing at once, the key layout, the
// timeout and a damaged record.

func promptTestPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "test-" + hex.EncodeToString(b[:]) + ":"
}

func openPromptStore(t *testing.T, prefix string) *PromptStore {
	t.Helper()
	c, err := NewClient(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	s, err := NewPromptStore(c, PromptOptions{Prefix: prefix, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func messages(text string) prompt.Template {
	b, _ := json.Marshal([]map[string]string{{"role": "user", "content": text}})
	return prompt.Template{Messages: b}
}

// TestPromptPublishFromReplicas: four replicas (clients), 50 goroutines
// each, publish to one prompt at once; the versions are exactly 1..200.
func TestPromptPublishFromReplicas(t *testing.T) {
	prefix := promptTestPrefix()
	const replicas, each = 4, 50
	stores := make([]*PromptStore, replicas)
	for i := range stores {
		stores[i] = openPromptStore(t, prefix)
	}
	var mu sync.Mutex
	byVersion := make(map[int]string)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for r := range replicas {
		for g := range each {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				who := fmt.Sprintf("replica %d goroutine %d", r, g)
				v, err := stores[r].PublishPrompt(context.Background(), "busy", messages(who))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if prev, dup := byVersion[v.Version]; dup {
					t.Errorf("%s and %s both got version %d", prev, who, v.Version)
				}
				byVersion[v.Version] = who
			}()
		}
	}
	close(start)
	wg.Wait()
	all, err := stores[0].PromptVersions(context.Background(), "busy")
	if err != nil || len(all) != replicas*each {
		t.Fatalf("%d versions, %v", len(all), err)
	}
	for i, v := range all {
		if v.Version != i+1 || string(v.Messages) != string(messages(byVersion[i+1]).Messages) {
			t.Fatalf("version %d: %s, want %q", v.Version, v.Messages, byVersion[i+1])
		}
	}
	latest, err := stores[1].PromptVersion(context.Background(), "busy", 0)
	if err != nil || latest.Version != replicas*each {
		t.Fatalf("latest %+v %v", latest, err)
	}
}

func TestPromptKeyLayout(t *testing.T) {
	prefix := promptTestPrefix()
	s := openPromptStore(t, prefix)
	ctx := context.Background()
	if _, err := s.PublishPrompt(ctx, "support-answer", messages("hi")); err != nil {
		t.Fatal(err)
	}
	key := prefix + "tg:{prompt:support-answer}:versions"
	if typ, err := s.c.Type(ctx, key).Result(); err != nil || typ != "list" {
		t.Fatalf("key %s is %q (%v)", key, typ, err)
	}
	keys, err := s.c.Keys(ctx, prefix+"*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys %v %v", keys, err)
	}
}

// A tenant's seen prompts live in its own hash slot, with a TTL (and up
// to 1% more), so that they neither mix with another tenant's nor outlive
// their use; a list of the earlier layout is left alone to expire.
func TestSeenPromptKeyLayout(t *testing.T) {
	prefix := promptTestPrefix()
	s := openPromptStore(t, prefix)
	s.rand = func(n int64) int64 { return n - 1 } // the most jitter
	ctx := context.Background()
	old := prefix + "tg:{acme}:ps:story"
	if err := s.c.RPush(ctx, old, `{"messages":[],"seen":true}`).Err(); err != nil {
		t.Fatal(err)
	}
	lim := prompt.SeenLimits{MaxPrompts: 10, TTL: time.Hour}
	if v, err := s.RecordSeen(ctx, "acme", "story", 0, prompt.SumTemplate(messages("hi")), lim); err != nil || v.Version != 1 {
		t.Fatalf("record %+v %v", v, err)
	}
	for key, want := range map[string]string{prefix + "tg:{acme}:psv": "hash", prefix + "tg:{acme}:psi": "zset"} {
		if typ, err := s.c.Type(ctx, key).Result(); err != nil || typ != want {
			t.Errorf("key %s is %q (%v), want a %s", key, typ, err, want)
		}
		if ttl, err := s.c.PTTL(ctx, key).Result(); err != nil || ttl <= time.Hour+35*time.Second || ttl > time.Hour+36*time.Second {
			t.Errorf("key %s expires in %v (%v), want the TTL and 1%%", key, ttl, err)
		}
	}
	raw, err := s.c.HGet(ctx, prefix+"tg:{acme}:psv", "story").Result()
	if sum := prompt.SumTemplate(messages("hi")); err != nil || !strings.HasPrefix(raw, "1:"+hex.EncodeToString(sum[:])+":") {
		t.Errorf("the stored value is %q (%v)", raw, err)
	}
	if keys, err := s.c.Keys(ctx, prefix+"*").Result(); err != nil || len(keys) != 3 {
		t.Fatalf("keys %v %v", keys, err)
	}
	if n, err := s.c.LLen(ctx, old).Result(); err != nil || n != 1 {
		t.Errorf("the old list holds %d (%v)", n, err)
	}
}

// What Redis holds for a seen prompt does not grow with its template or
// its versions: a tenant's application that tags calls without marking
// their inputs makes a new large template on every call.
func TestSeenPromptSizeIsFixed(t *testing.T) {
	prefix := promptTestPrefix()
	s := openPromptStore(t, prefix)
	lib, err := prompt.NewLibrary(prompt.LibraryOptions{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	ctx := context.Background()
	key := prefix + "tg:{acme}:psv"
	var first int64
	const versions = 40
	for i := 1; i <= versions; i++ {
		// From 5 KiB to 200 KiB, each one new.
		tpl := messages(fmt.Sprintf("%d %s", i, strings.Repeat("x", i*5<<10)))
		lib.Observe("acme", "story", tpl)
		lib.Flush()
		if n := lib.Observe("acme", "story", tpl); n != i {
			t.Fatalf("template %d: version %d", i, n)
		}
		field, err := s.c.HStrLen(ctx, key, "story").Result()
		if err != nil || field > 100 {
			t.Fatalf("version %d: the seen prompt takes %d bytes (%v)", i, field, err)
		}
		mem, err := s.c.MemoryUsage(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			first = mem
		} else if mem > first+8 { // room for the version's digits
			t.Fatalf("version %d: the tenant's seen prompts take %d bytes, %d at version 1", i, mem, first)
		}
	}
	if v, err := s.LatestSeen(ctx, "acme", "story", prompt.SeenLimits{TTL: time.Hour}); err != nil || v.Version != versions {
		t.Fatalf("latest %+v %v", v, err)
	}
}

// A seen value that is not "<version>:<sum>:<ms>" is an error, not a
// version 0.
func TestSeenPromptDamagedValue(t *testing.T) {
	prefix := promptTestPrefix()
	s := openPromptStore(t, prefix)
	ctx := context.Background()
	lim := prompt.SeenLimits{MaxPrompts: 10, TTL: time.Hour}
	if _, err := s.RecordSeen(ctx, "acme", "p", 0, prompt.TemplateSum{}, lim); err != nil {
		t.Fatal(err)
	}
	if err := s.c.HSet(ctx, prefix+"tg:{acme}:psv", "p", "garbage").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LatestSeen(ctx, "acme", "p", lim); err == nil || errors.Is(err, prompt.ErrNotFound) {
		t.Fatalf("got %v", err)
	}
}

func TestPromptDamagedRecord(t *testing.T) {
	prefix := promptTestPrefix()
	s := openPromptStore(t, prefix)
	ctx := context.Background()
	if err := s.c.RPush(ctx, prefix+"tg:{prompt:bad}:versions", "not json").Err(); err != nil {
		t.Fatal(err)
	}
	for _, v := range []int{0, 1} {
		if _, err := s.PromptVersion(ctx, "bad", v); err == nil || !strings.Contains(err.Error(), `prompt "bad" version 1 is unreadable`) {
			t.Fatalf("v%d: %v", v, err)
		}
	}
	if _, err := s.PromptVersions(ctx, "bad"); err == nil {
		t.Fatal("listed a damaged record")
	}
}

// TestPromptTimeout: a Redis that accepts connections and never answers
// costs each call its timeout, not more.
func TestPromptTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { // hold the connection open, say nothing
				_, _ = c.Read(make([]byte, 1<<16))
				_ = c.Close()
			}()
		}
	}()
	c, err := NewClient("redis://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := NewPromptStore(c, PromptOptions{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"publish":  func() error { _, err := s.PublishPrompt(ctx, "p", messages("x")); return err },
		"version":  func() error { _, err := s.PromptVersion(ctx, "p", 1); return err },
		"latest":   func() error { _, err := s.PromptVersion(ctx, "p", 0); return err },
		"versions": func() error { _, err := s.PromptVersions(ctx, "p"); return err },
		"latest seen": func() error {
			_, err := s.LatestSeen(ctx, "t", "p", prompt.SeenLimits{MaxPrompts: 1, TTL: time.Hour})
			return err
		},
		"record seen": func() error {
			_, err := s.RecordSeen(ctx, "t", "p", 0, prompt.TemplateSum{}, prompt.SeenLimits{MaxPrompts: 1, TTL: time.Hour})
			return err
		},
	} {
		start := time.Now()
		err := call()
		if took := time.Since(start); err == nil || took > 2*time.Second {
			t.Errorf("%s: %v after %v", name, err, took)
		}
	}
}

func TestPromptStoreOptions(t *testing.T) {
	if _, err := NewPromptStore(nil, PromptOptions{Prefix: "a{b"}); err == nil {
		t.Fatal("a prefix with a brace was accepted")
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled here
	defer c.Close()
	st, err := New(c, Options{Prefix: "pre:"})
	if err != nil {
		t.Fatal(err)
	}
	p := st.Prompts(0)
	if p.prefix != "pre:" || p.timeout != 100*time.Millisecond || p.key("x") != "pre:tg:{prompt:x}:versions" {
		t.Fatalf("got %+v", p)
	}
}
