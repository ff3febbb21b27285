package fault

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/tidwall/gjson"
)

// chatBody is a small chat completion; the mock answers it at once.
const chatBody = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"nothing answered may be lost"}]}`

// client talks to loopback only; each call is its own request with its own
// id, so keep-alive connections are fine and save ports.
var client = &http.Client{
	Timeout:   60 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
}

// burst is a series of calls and what became of each.
type burst struct {
	mu       sync.Mutex
	sent     []string       // request ids, in the order they were sent
	status   map[string]int // id → HTTP status of a complete answer; absent: no answer
	statuses map[int]int    // status → calls (0: no complete answer)
	answered atomic.Int64   // 200s received in full
	done     atomic.Int64   // calls finished, whichever way
}

func newBurst() *burst { return &burst{status: map[string]int{}, statuses: map[int]int{}} }

// call is what drive sends: the path, body and headers of call i.
type call struct {
	path   string
	body   string
	header func(i int) http.Header // nil: none beyond the request id
}

// drive sends n calls to base (a tollgate's data plane) from conc workers,
// at most rate calls a second (0: as fast as they go), until n are sent or
// ctx ends. A call is answered when its 200 arrived complete: the whole
// body read and a JSON completion. It returns how many were sent.
func (b *burst) drive(ctx context.Context, base string, c call, n, conc int, rate float64) int {
	var next atomic.Int64
	var tick <-chan time.Time
	if rate > 0 {
		tk := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer tk.Stop()
		tick = tk.C
	}
	var sent atomic.Int64
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for {
				if tick != nil {
					select {
					case <-tick:
					case <-ctx.Done():
						return
					}
				}
				if ctx.Err() != nil {
					return
				}
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				sent.Add(1)
				b.one(ctx, base, c, i)
			}
		})
	}
	wg.Wait()
	return int(sent.Load())
}

// one sends call i and records its outcome.
func (b *burst) one(ctx context.Context, base string, c call, i int) {
	id := uuid.NewString()
	b.mu.Lock()
	b.sent = append(b.sent, id)
	b.mu.Unlock()
	status := 0
	defer func() {
		b.mu.Lock()
		if status != 0 {
			b.status[id] = status
		}
		b.statuses[status]++
		b.mu.Unlock()
		if status == http.StatusOK {
			b.answered.Add(1)
		}
		b.done.Add(1)
	}()
	req, err := http.NewRequest(http.MethodPost, base+c.path, strings.NewReader(c.body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.header != nil {
		req.Header = c.header(i)
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Helicone-Request-Id", id)
	resp, err := client.Do(req)
	if err != nil {
		return // no answer: refused, reset or cut
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return
	}
	if resp.StatusCode == http.StatusOK && !gjson.GetBytes(body, "choices.0").Exists() {
		return // a 200 whose body did not arrive whole
	}
	status = resp.StatusCode
}

// ids returns the ids sent and those answered with want.
func (b *burst) ids(want int) (sent, got []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range b.sent {
		if b.status[id] == want {
			got = append(got, id)
		}
	}
	return append([]string(nil), b.sent...), got
}

// count is the calls that ended with status (0: no complete answer).
func (b *burst) count(status int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.statuses[status]
}
