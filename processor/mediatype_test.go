package processor

import (
	"mime"
	"testing"
)

// mediaType's shortcut agrees with mime.ParseMediaType on every kind of
// value, well formed or not.
func TestMediaTypeAgreesWithParseMediaType(t *testing.T) {
	for _, v := range []string{
		"", "application/json", "Application/JSON", "text/event-stream", "text/event-stream; charset=utf-8",
		"text/event-stream; charset", "text/event-stream;", " text/event-stream", "text/event-stream ",
		"text", "text/", "/json", "text/event/stream", "text/event stream", "application/vnd.api+json",
		"text/\x7fx", "text/é", "a/b\"", "application/json; a=b; a=c", "application/json,text/plain",
	} {
		want, _, err := mime.ParseMediaType(v)
		if err != nil {
			want = ""
		}
		if got := mediaType(v); got != want {
			t.Errorf("mediaType(%q) = %q, ParseMediaType says %q (err %v)", v, got, want, err)
		}
	}
}

func FuzzMediaType(f *testing.F) {
	f.Add("text/event-stream; charset=utf-8")
	f.Fuzz(func(t *testing.T, v string) {
		want, _, err := mime.ParseMediaType(v)
		if err != nil {
			want = ""
		}
		if got := mediaType(v); got != want {
			t.Errorf("mediaType(%q) = %q, ParseMediaType says %q", v, got, want)
		}
	})
}
