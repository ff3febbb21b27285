package mockprovider

import (
	"net/http"
	"slices"
	"sync"
)

// ReceivedRequest is one request as the mock saw it.
type ReceivedRequest struct {
	Method string
	Path   string
	Query  string // the raw query, without '?'
	Header http.Header
	Body   []byte
}

func (r ReceivedRequest) clone() ReceivedRequest {
	r.Header = r.Header.Clone()
	r.Body = slices.Clone(r.Body)
	return r
}

// receivedLimit bounds memory in long benchmarks while leaving tests plenty.
const receivedLimit = 1000

// ring keeps the last receivedLimit requests.
type ring struct {
	mu    sync.Mutex
	items []ReceivedRequest
	next  int // slot to overwrite once items is full
}

// add takes ownership of r: the caller must not change it afterwards.
func (g *ring) add(r ReceivedRequest) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.items) < receivedLimit {
		g.items = append(g.items, r)
		return
	}
	g.items[g.next] = r
	g.next = (g.next + 1) % receivedLimit
}

func (g *ring) snapshot() []ReceivedRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]ReceivedRequest, 0, len(g.items))
	for i := range g.items {
		out = append(out, g.items[(g.next+i)%len(g.items)].clone())
	}
	return out
}

func (g *ring) reset() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.items, g.next = nil, 0
}
