package mockprovider_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/mockprovider"
)

const stallBody = `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`

// x-mock-stall-after holds a stream after N events until the client
// leaves: a client that reads N events and hangs up gets nothing more,
// however long it takes, and the handler ends with the hang-up (the
// server's Close waits for it; MaxStall is an hour here).
func TestStallAfterHoldsUntilTheClientLeaves(t *testing.T) {
	_, url := start(t, mockprovider.Options{MaxStall: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", url+"/v1/chat/completions", strings.NewReader(stallBody))
	req.Header.Set(mockprovider.HeaderStallAfter, "2")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for events := 0; events < 2; {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d events: %v", events, err)
		}
		if line == "\n" {
			events++
		}
	}
	cancel()
	if rest, err := readSSE(br); len(rest) != 0 || err == nil {
		t.Errorf("after the hang-up: %d more events (%v), want none and the read cut", len(rest), err)
	}
}

// The hold is bounded: past MaxStall the stream goes on to its end. A
// malformed value is a 400.
func TestStallAfterIsBounded(t *testing.T) {
	_, url := start(t, mockprovider.Options{MaxStall: time.Millisecond})
	resp, body := do(t, "POST", url+"/v1/chat/completions", stallBody, mockprovider.HeaderStallAfter, "2")
	if ev := parseSSE(t, body); resp.StatusCode != 200 || len(ev) < 3 || ev[len(ev)-1].data != "[DONE]" {
		t.Errorf("stall-after 2 past MaxStall: %d %q, want the whole stream", resp.StatusCode, body)
	}
	if resp, b := do(t, "POST", url+"/v1/chat/completions", stallBody, mockprovider.HeaderStallAfter, "-1"); resp.StatusCode != 400 {
		t.Errorf("bad stall-after: %d %s", resp.StatusCode, b)
	}
}
