package helicone

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/record"
)

func TestIdentifyCopiesTheDeclaredIdentity(t *testing.T) {
	var h Headers
	for k, v := range map[string]string{
		RequestID: "0192F1B2-7C3A-7DEF-8ABC-0123456789AB", UserID: "u1",
		SessionID: "s1", SessionPath: "/a/b", SessionName: "chat", RequestName: "greet",
		"helicone-property-b": "2", "helicone-property-a": "1",
	} {
		if err := h.Add(k, v); err != nil {
			t.Fatalf("Add(%s): %v", k, err)
		}
	}
	var got record.Record
	h.Identify(&got)
	want := record.Record{
		RequestID: "0192f1b2-7c3a-7def-8abc-0123456789ab", UserID: "u1",
		SessionID: "s1", SessionPath: "/a/b", SessionName: "chat", RequestName: "greet",
		Properties: []record.Property{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("record (-want +got):\n%s", d)
	}
}

func TestIdentifyMakesAnIDWhenNoneIsSent(t *testing.T) {
	var h Headers
	var rec record.Record
	h.Identify(&rec)
	if id, err := uuid.Parse(rec.RequestID); err != nil || id.Version() != 7 {
		t.Errorf("request id %q: want a new UUIDv7", rec.RequestID)
	}
}
