package record

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestFileSinkWritesOneJSONLinePerRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs", "requests.jsonl")
	sink, err := OpenFileSink(path, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"a", "b", "c"} {
		sink.Write(&Record{RequestID: id, Status: int32(200 + i), Properties: []Property{{Key: "team", Value: "x"}}})
	}
	if err := sink.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	sink.Write(&Record{RequestID: "after-close"}) // must not panic or appear

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, r)
	}
	if len(got) != 3 || got[0].RequestID != "a" || got[2].Status != 202 || got[1].Properties[0].Key != "team" {
		t.Fatalf("got %+v", got)
	}
}

func TestFileSinkFlushMakesRecordsVisible(t *testing.T) {
	path := filepath.Join(t.TempDir(), "requests.jsonl")
	sink, err := OpenFileSink(path, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close(context.Background())
	sink.Write(&Record{RequestID: "x"})
	if err := sink.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil || len(data) == 0 || data[len(data)-1] != '\n' {
		t.Fatalf("after Flush: %q, %v", data, err)
	}
}
