package processor

import (
	"mime"
	"testing"
)

// mediaType's shortcut agrees with mime.ParseMediaType on every kind of
// value, well formed or not.
func TestMediaTypeAgreesWithParseMediaType(t *testing.T) {
	for _, v := range mediaTypeSamples {
		want, _, err := mime.ParseMediaType(v)
		if err != nil {
			want = ""
		}
		if got := mediaType(v); got != want {
			t.Errorf("mediaType(%q) = %q, ParseMediaType says %q (err %v)", v, got, want, err)
		}
	}
}

// mediaTypeSamples: Content-Type values, well formed or not, the test's
// cases and the fuzz target's seeds.
var mediaTypeSamples = []string{
	"", "application/json", "Application/JSON", "text/event-stream", "text/event-stream; charset=utf-8",
	"text/event-stream; charset", "text/event-stream;", " text/event-stream", "text/event-stream ",
	"text", "text/", "/json", "text/event/stream", "text/event stream", "application/vnd.api+json",
	"text/\x7fx", "text/é", "a/b\"", "application/json; a=b; a=c", "application/json,text/plain",
	"text/event-stream;charset=UTF-8", "text/event-stream ;charset=utf-8", "text/event-stream; charset = utf-8",
	"text/event-stream; charset=\"utf-8\"", "a/b; x=1; X=1", "a/b; x=1; X=2", "a/b; x=1;", "a/b; x=1; ;",
	"a/b; x*=utf-8''%41", "a/b; x*0=a; x*1=b", "a/b; =1", "a/b; x=", "a/b; x", "a/b; a=1; b=2; c=3; d=4; e=5",
	"a/b;\tx=1", "a/b; x=1 y", "a/b; x=\u00e9",
}

func FuzzMediaType(f *testing.F) {
	for _, v := range mediaTypeSamples {
		f.Add(v)
	}
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
