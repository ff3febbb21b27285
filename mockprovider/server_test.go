package mockprovider_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/tollgate-dev/tollgate/mockprovider"
)

func TestMountedUnderPrefix(t *testing.T) {
	_, url := start(t, mockprovider.Options{})
	resp, body := do(t, "POST", url+"/openai/v1/chat/completions", chatBody)
	wantStatus(t, resp, body, 200)
	resp, body = do(t, "POST", url+"/anthropic/v1/messages", messagesBody)
	wantStatus(t, resp, body, 200)
	if gjson.GetBytes(body, "type").String() != "message" {
		t.Fatalf("prefixed /v1/messages answered %s", body)
	}
}

func TestUnknownPath(t *testing.T) {
	_, url := start(t, mockprovider.Options{})
	resp, body := do(t, "POST", url+"/v1/nothing-here", "{}")
	wantStatus(t, resp, body, 404)
	if msg := gjson.GetBytes(body, "error.message").String(); !strings.Contains(msg, "/v1/nothing-here") {
		t.Fatalf("404 body = %s", body)
	}
}

func TestWrongMethod(t *testing.T) {
	_, url := start(t, mockprovider.Options{})
	resp, body := do(t, "GET", url+"/v1/chat/completions", "")
	wantStatus(t, resp, body, 405)
	if resp.Header.Get("Allow") != "POST" || !gjson.GetBytes(body, "error.type").Exists() {
		t.Fatalf("405: allow %q body %s", resp.Header.Get("Allow"), body)
	}
}

func TestBadJSON(t *testing.T) {
	_, url := start(t, mockprovider.Options{})
	for _, tt := range []struct {
		path, body, typePath, wantType string
	}{
		{"/v1/chat/completions", `{"model":`, "error.type", "invalid_request_error"},
		{"/v1/embeddings", `["not","an","object"]`, "error.type", "invalid_request_error"},
		{"/v1/responses", ``, "error.type", "invalid_request_error"},
		{"/v1/messages", `not json`, "error.type", "invalid_request_error"},
	} {
		resp, body := do(t, "POST", url+tt.path, tt.body)
		wantStatus(t, resp, body, 400)
		if got := gjson.GetBytes(body, tt.typePath).String(); got != tt.wantType {
			t.Errorf("%s: %s = %q in %s", tt.path, tt.typePath, got, body)
		}
		if strings.HasPrefix(tt.path, "/v1/messages") && gjson.GetBytes(body, "type").String() != "error" {
			t.Errorf("anthropic error body = %s", body)
		}
	}
}

func TestReceived(t *testing.T) {
	m, url := start(t, mockprovider.Options{})
	do(t, "POST", url+"/v1/chat/completions", chatBody, "Authorization", "Bearer sk-test")
	do(t, "GET", url+"/v1/models", "")
	got := m.Received()
	if len(got) != 2 {
		t.Fatalf("received %d requests, want 2", len(got))
	}
	first := got[0]
	if first.Method != "POST" || first.Path != "/v1/chat/completions" || string(first.Body) != chatBody ||
		first.Header.Get("Authorization") != "Bearer sk-test" {
		t.Fatalf("first = %+v", first)
	}
	if got[1].Path != "/v1/models" {
		t.Fatalf("order: second = %s", got[1].Path)
	}

	// Copies: changing them leaves the record intact.
	first.Body[0] = 'X'
	first.Header.Set("Authorization", "changed")
	again := m.Received()[0]
	if string(again.Body) != chatBody || again.Header.Get("Authorization") != "Bearer sk-test" {
		t.Fatal("Received returned shared, not copied, data")
	}

	m.Reset()
	if n := len(m.Received()); n != 0 {
		t.Fatalf("after Reset: %d requests", n)
	}
}

func TestReceivedIsBounded(t *testing.T) {
	m := mockprovider.New(mockprovider.Options{})
	const total = 1005
	for i := range total {
		r := httptest.NewRequest("POST", fmt.Sprintf("/v1/chat/completions?i=%d", i), strings.NewReader(fmt.Sprintf(`{"n":%d}`, i)))
		m.ServeHTTP(httptest.NewRecorder(), r)
	}
	got := m.Received()
	if len(got) != 1000 {
		t.Fatalf("kept %d requests, want 1000", len(got))
	}
	if string(got[0].Body) != `{"n":5}` || string(got[999].Body) != `{"n":1004}` {
		t.Fatalf("window = %s … %s, want the last 1000 oldest first", got[0].Body, got[999].Body)
	}
}

// A response must be the same for the same request, apart from ids and
// time stamps.
func TestDeterministic(t *testing.T) {
	m := mockprovider.New(mockprovider.Options{})
	answer := func() string {
		w := httptest.NewRecorder()
		m.ServeHTTP(w, httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(chatBody)))
		if w.Code != http.StatusOK {
			t.Fatalf("status %d", w.Code)
		}
		return gjson.Get(w.Body.String(), "[choices,usage]").Raw
	}
	if a, b := answer(), answer(); a != b {
		t.Fatalf("answers differ:\n%s\n%s", a, b)
	}
}
