package mockprovider_test

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/mockprovider"
)

// start runs a mock on a loopback listener for the length of the test.
func start(t *testing.T, opts mockprovider.Options) (*mockprovider.Server, string) {
	t.Helper()
	m := mockprovider.New(opts)
	ts := httptest.NewServer(m)
	t.Cleanup(ts.Close)
	return m, ts.URL
}

// do sends one request and returns the response with its whole body.
func do(t *testing.T, method, url, body string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	resp, err := send(method, url, body, headers...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, b
}

func send(method, url, body string, headers ...string) (*http.Response, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return http.DefaultClient.Do(req)
}

type sseEvent struct {
	name string // the event: line, "" when absent
	data string
}

// parseSSE splits a complete SSE body into events, failing the test on
// anything the providers would not send.
func parseSSE(t *testing.T, body []byte) []sseEvent {
	t.Helper()
	events, rest := readSSE(bytes.NewReader(body))
	if rest != nil {
		t.Fatalf("reading SSE: %v", rest)
	}
	return events
}

// readSSE reads events until the stream ends; the error is nil on a clean
// end, and otherwise what broke the stream.
func readSSE(r io.Reader) ([]sseEvent, error) {
	var events []sseEvent
	var cur sseEvent
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if err == io.EOF && line == "" {
				return events, nil
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return events, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			events = append(events, cur)
			cur = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.data = strings.TrimPrefix(line, "data: ")
		default:
			return events, &badLineError{line}
		}
	}
}

type badLineError struct{ line string }

func (e *badLineError) Error() string { return "unexpected SSE line " + e.line }

func wantStatus(t *testing.T, resp *http.Response, body []byte, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, want, body)
	}
}
