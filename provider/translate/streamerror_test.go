package translate

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// The event that ends a broken stream is one well-formed SSE event in the
// client's format, with the message JSON-escaped.
func TestBrokenStreamEvent(t *testing.T) {
	const msg = `cut "here" <\n>`
	oa := string(BrokenStreamEvent("openai", msg))
	data, ok := strings.CutPrefix(oa, "data: ")
	if !ok || !strings.HasSuffix(oa, "\n\n") || strings.Count(oa, "\n") != 2 ||
		gjson.Get(data, "error.message").String() != msg || gjson.Get(data, "error.type").String() != "server_error" {
		t.Errorf("openai: %q", oa)
	}
	an := string(BrokenStreamEvent("anthropic", msg))
	data, ok = strings.CutPrefix(an, "event: error\ndata: ")
	if !ok || !strings.HasSuffix(an, "\n\n") || strings.Count(an, "\n") != 3 ||
		gjson.Get(data, "type").String() != "error" || gjson.Get(data, "error.type").String() != "api_error" ||
		gjson.Get(data, "error.message").String() != msg {
		t.Errorf("anthropic: %q", an)
	}
}
