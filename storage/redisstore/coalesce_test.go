package redisstore

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/policies/ratelimit"
)

// The coalescer is tested on a private Redis that the tests pause
// (SIGSTOP): the one call in flight then hangs, so the calls behind it
// queue deterministically and go out together when Redis resumes.

// stalled opens a Store with one round trip in flight at most, on a private
// Redis, and starts a call that hangs in it while Redis is paused; resume
// lets it (and everything queued behind it) through.
func stalled(t *testing.T) (s *Store, resume func()) {
	t.Helper()
	srv := testenv.StartRedis(t)
	s, err := Open(srv.URL(), Options{MaxInFlight: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	// Dial before the pause, a connection of each pool (pipelines have
	// their own), so that the writes counted below are the calls'.
	if _, err := s.c.Pipelined(context.Background(), func(p redis.Pipeliner) error {
		p.Ping(context.Background())
		p.Ping(context.Background())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err, _ := s.q.do(ctx, redis.NewStatusCmd(ctx, "ping"))
		done <- err
	}()
	testenv.WaitFor(t, 10*time.Second, "the first call in flight", func() bool {
		s.q.mu.Lock()
		defer s.q.mu.Unlock()
		return s.q.busy == 1
	})
	resumed := false
	resume = func() {
		if resumed {
			return
		}
		resumed = true
		srv.Resume()
		if err := <-done; err != nil {
			t.Errorf("the call in flight: %v", err)
		}
	}
	t.Cleanup(resume)
	return s, resume
}

func queued(s *Store) int {
	s.q.mu.Lock()
	defer s.q.mu.Unlock()
	return len(s.q.queue)
}

// TestCoalescerOneWriteInOrder: calls queued behind a round trip go out as
// one pipeline, in the order they came, and each gets its own reply; a
// command that fails in Redis fails alone.
func TestCoalescerOneWriteInOrder(t *testing.T) {
	s, resume := stalled(t)
	ctx := context.Background()
	const n = 6
	cmds := make([]*redis.Cmd, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		// RPUSH returns the list's length after the push: the order of
		// execution. Call 3 fails in Redis, on its own.
		cmds[i] = redis.NewCmd(ctx, "rpush", "order", strconv.Itoa(i))
		if i == 3 {
			cmds[i] = redis.NewCmd(ctx, "eval", "return redis.error_reply('BROKEN on purpose')", 0)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i], _ = s.q.do(ctx, cmds[i])
		}()
		testenv.WaitFor(t, 10*time.Second, "call queued", func() bool { return queued(s) == i+1 })
	}
	writes, trips := s.Writes(), s.RoundTrips()
	resume()
	wg.Wait()
	if got := s.Writes() - writes; got != 1 {
		t.Errorf("%d calls sent in %d writes, want 1", n, got)
	}
	if got := s.RoundTrips() - trips; got != n {
		t.Errorf("%d calls counted %d round trips, want one each", n, got)
	}
	want := int64(0)
	for i := range n {
		if i == 3 {
			if !redis.HasErrorPrefix(errs[i], "BROKEN") {
				t.Errorf("call 3: err %v, want its own script error", errs[i])
			}
			continue
		}
		want++
		if errs[i] != nil || cmds[i].Val() != want {
			t.Errorf("call %d: reply %v, err %v; want %d", i, cmds[i].Val(), errs[i], want)
		}
	}
}

// TestCoalescerCancel: a queued call whose context ends leaves the queue
// at once with the context's error; the calls behind it are still sent.
func TestCoalescerCancel(t *testing.T) {
	s, resume := stalled(t)
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan error, 1)
	go func() {
		err, settled := s.q.do(ctx, redis.NewStatusCmd(ctx, "ping"))
		if !settled {
			t.Error("a call that left the queue is not settled")
		}
		gone <- err
	}()
	testenv.WaitFor(t, 10*time.Second, "call queued", func() bool { return queued(s) == 1 })
	stay := redis.NewCmd(context.Background(), "echo", "stay")
	stayed := make(chan error, 1)
	go func() { err, _ := s.q.do(context.Background(), stay); stayed <- err }()
	testenv.WaitFor(t, 10*time.Second, "call queued", func() bool { return queued(s) == 2 })
	cancel()
	if err := <-gone; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %v", err)
	}
	if n := queued(s); n != 1 {
		t.Fatalf("%d calls queued after the cancel, want 1", n)
	}
	resume()
	if err := <-stayed; err != nil || stay.Val() != "stay" {
		t.Fatalf("the call behind it: %v %v", stay.Val(), err)
	}
}

// TestCoalescerCancelledLeader: the call picked to send a batch still
// sends it when its own context has ended — cancelled, or past its
// deadline — so the others get their replies.
func TestCoalescerCancelledLeader(t *testing.T) {
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		testGoneLeader(t, ctx)
	})
	t.Run("past its deadline", func(t *testing.T) {
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel()
		testGoneLeader(t, ctx)
	})
}

func testGoneLeader(t *testing.T, ctx context.Context) {
	s, resume := stalled(t)
	q := s.q
	// Queued by hand and taken as the next batch's leader, as next() does
	// when the round trip in flight ends, before the leader notices.
	lead := &waiter{ctx: ctx, cmd: redis.NewStatusCmd(ctx, "ping"), wake: make(chan []*waiter, 1)}
	// The other call has a deadline of its own, later.
	octx, ocancel := context.WithTimeout(context.Background(), time.Minute)
	defer ocancel()
	other := redis.NewCmd(octx, "echo", "other")
	q.mu.Lock()
	q.queue = append(q.queue, lead)
	q.mu.Unlock()
	otherErr := make(chan error, 1)
	go func() { err, _ := q.do(octx, other); otherErr <- err }()
	testenv.WaitFor(t, 10*time.Second, "call queued", func() bool { return queued(s) == 2 })
	resume() // the round trip in flight ends: lead is handed the batch
	select {
	case batch := <-lead.wake:
		q.send(batch) // what do does for a cancelled leader
	case <-time.After(10 * time.Second):
		t.Fatal("the batch was not handed to its leader")
	}
	if err := <-otherErr; err != nil || other.Val() != "other" {
		t.Fatalf("the other call: %v %v", other.Val(), err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.busy != 0 || len(q.queue) != 0 {
		t.Fatalf("after the batch: %d in flight, %d queued", q.busy, len(q.queue))
	}
}

// TestCoalescerDeadRedisFailsEveryCall: with Redis stopped dead (paused,
// then killed), every Gate check queued behind the stuck call gets the
// configured fail mode — a 503 when failing closed, admitted without a
// limit when failing open — none is left waiting, and no goroutine is left
// behind.
func TestCoalescerDeadRedisFailsEveryCall(t *testing.T) {
	for _, failClosed := range []bool{true, false} {
		t.Run("fail-closed="+strconv.FormatBool(failClosed), func(t *testing.T) {
			before := runtime.NumGoroutine()
			srv := testenv.StartRedis(t)
			s, err := Open(srv.URL(), Options{MaxInFlight: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			g := gate.New(gate.Options{Store: s, FailClosed: failClosed, Timeout: 20 * time.Second})
			if err := s.Ping(context.Background()); err != nil { // dial before the pause
				t.Fatal(err)
			}
			srv.Pause()
			const n = 8
			results := make(chan *gate.Decision, n)
			for i := range n {
				go func() {
					d, err := g.Check(context.Background(), limitedInfo(i))
					if err != nil {
						t.Error(err)
					}
					results <- d
				}()
			}
			testenv.WaitFor(t, 10*time.Second, "calls queued", func() bool { return queued(s) == n-1 })
			srv.Kill()
			for range n {
				d := <-results
				switch {
				case d == nil:
					t.Error("no decision")
				case failClosed && !d.FailedClosed:
					t.Errorf("failing closed with Redis dead: %+v, want a 503", d)
				case !failClosed && d.Answer != nil:
					t.Errorf("failing open with Redis dead: answered %d, want the call let through", d.Answer.Status)
				}
			}
			if q := queued(s); q != 0 {
				t.Errorf("%d calls still queued", q)
			}
			_ = s.Close()
			testenv.WaitFor(t, 10*time.Second, "goroutines gone", func() bool { return runtime.NumGoroutine() <= before })
		})
	}
}

// TestCoalescerClusterExact: on a Redis Cluster, calls of many tenants
// (keys on different nodes) coalesced into shared pipelines still admit
// exactly each tenant's quota, and no tenant's calls touch another's
// bucket.
func TestCoalescerClusterExact(t *testing.T) {
	s, err := Open(testenv.StartRedisCluster(t), Options{MaxInFlight: 1, Prefix: "coalesce:"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const tenants, callsEach, quota = 8, 20, 5
	var mu sync.Mutex
	admitted := map[string]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range tenants * callsEach {
		tenant := "tenant-" + strconv.Itoa(i%tenants)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			prefix := ratelimit.TenantKeyPrefix(tenant)
			res, err := s.Admit(context.Background(), gate.StoreAdmit{
				CacheKey: prefix + "c:k", Slots: 1,
				Buckets: []ratelimit.BucketTake{{BucketRef: ratelimit.BucketRef{Key: prefix + "rl:request:all", Capacity: quota, Window: time.Hour}, Cost: 1}},
			})
			if err != nil {
				t.Error(err)
				return
			}
			if res.Buckets[0].Allowed {
				mu.Lock()
				admitted[tenant]++
				mu.Unlock()
			}
		}()
	}
	writes := s.Writes()
	close(start)
	wg.Wait()
	t.Logf("%d calls in %d writes", tenants*callsEach, s.Writes()-writes)
	for i := range tenants {
		if n := admitted["tenant-"+strconv.Itoa(i)]; n != quota {
			t.Errorf("tenant-%d: %d admitted, want exactly %d", i, n, quota)
		}
	}
}

// limitedInfo is a call under a rate-limit policy: the fail mode applies.
func limitedInfo(i int) gate.RequestInfo {
	return gate.RequestInfo{Tenant: "t", Method: "POST", URL: "/v1/chat/completions", Body: []byte(`{}`),
		UserID: "u" + strconv.Itoa(i), Helicone: &helicone.Headers{RateLimitPolicy: "1000;w=60;s=user"}}
}

// TestSlotKey: the Store's own slot key builder names the same keys as
// gate.CacheSlotKey (memstore's), so the two key spaces stay one.
func TestSlotKey(t *testing.T) {
	s := &Store{prefix: "p:"}
	for _, slot := range []int{0, 1, 9, 10, 19} {
		if got, want := s.slotKey("tg:{t}:c:ab", slot), "p:"+gate.CacheSlotKey("tg:{t}:c:ab", slot); got != want {
			t.Errorf("slot %d: %q, want %q", slot, got, want)
		}
	}
}

// TestCoalescerStress: many callers, some giving up at random moments;
// every call that returns without an error has its own reply, every other
// one its context's error, and the coalescer ends idle.
func TestCoalescerStress(t *testing.T) {
	s, err := Open(testenv.RedisURL(t), Options{MaxInFlight: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const callers, each = 32, 60
	writes := s.Writes()
	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				ctx, cancel := context.WithCancel(context.Background())
				if (c+i)%5 == 0 {
					go cancel() // gives up at some point during the call
				}
				want := strconv.Itoa(c) + "-" + strconv.Itoa(i)
				cmd := redis.NewCmd(ctx, "echo", want)
				err, _ := s.q.do(ctx, cmd)
				switch {
				case err == nil && cmd.Val() != want:
					t.Errorf("call %s got %v", want, cmd.Val())
				case err != nil && !errors.Is(err, context.Canceled):
					t.Errorf("call %s: %v", want, err)
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d calls in %d writes", callers*each, s.Writes()-writes)
	s.q.mu.Lock()
	defer s.q.mu.Unlock()
	if s.q.busy != 0 || len(s.q.queue) != 0 {
		t.Fatalf("after the calls: %d in flight, %d queued", s.q.busy, len(s.q.queue))
	}
}
