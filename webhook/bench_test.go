package webhook

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/record"
)

// answered is a transport that answers 204 at once: the benchmark measures
// Tollgate's side only.
type answered struct{}

func (answered) RoundTrip(r *http.Request) (*http.Response, error) {
	io.Copy(io.Discard, r.Body)
	return &http.Response{StatusCode: http.StatusNoContent, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
}

// BenchmarkSubmit is what a finished call costs the request path with one
// destination configured: the filters, the sample and a queue hand-off
// (or a counted drop when the workers fall behind).
func BenchmarkSubmit(b *testing.B) {
	d, err := New(Options{
		Destinations: []Destination{{Name: "bench", URL: "http://hooks.invalid/x", Tenant: AllTenants, SecretEnv: "S"}},
		Getenv:       func(string) string { return "secret" },
		Client:       &http.Client{Transport: answered{}},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close(context.Background())
	r := &record.Record{RequestID: "id", Tenant: "acme", Model: "gpt-4o-mini", Provider: "openai",
		RequestBody: `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}`, ResponseBody: `{"id":"x"}`}
	b.ReportAllocs()
	for b.Loop() {
		d.Submit(r)
	}
}
