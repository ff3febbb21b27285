package record

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
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

// The SIGKILL test re-executes the test binary with fileSinkHelperEnv set:
// the helper writes records from several goroutines, says so, and waits
// to be killed.
const fileSinkHelperEnv = "TOLLGATE_FILESINK_HELPER"

func TestFileSinkHelperProcess(t *testing.T) {
	path := os.Getenv(fileSinkHelperEnv)
	if path == "" {
		return
	}
	every := time.Hour
	if os.Getenv("HELPER_FSYNC") == "0" {
		every = 0
	}
	sink, err := OpenFileSink(path, every)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < 1000; i += 8 {
				sink.Write(&Record{RequestID: fmt.Sprintf("r%d", i), Status: 200, RequestBody: strings.Repeat("b", i)})
			}
		})
	}
	wg.Wait()
	fmt.Println("all written")
	time.Sleep(time.Minute) // SIGKILL comes first
	os.Exit(3)
}

// TestFileSinkKilledLosesNothing: every record whose Write returned is in
// the file after a SIGKILL, with an fsync cadence and with fsync per write.
func TestFileSinkKilledLosesNothing(t *testing.T) {
	for _, fsync := range []string{"1h", "0"} {
		t.Run("fsync="+fsync, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "requests.jsonl")
			exe, err := os.Executable()
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(exe, "-test.run=^TestFileSinkHelperProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), fileSinkHelperEnv+"="+path, "HELPER_FSYNC="+fsync)
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			sc := bufio.NewScanner(out)
			for sc.Scan() && !strings.Contains(sc.Text(), "all written") {
			}
			if err := cmd.Process.Kill(); err != nil { // SIGKILL, by PID
				t.Fatal(err)
			}
			cmd.Wait()

			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
				var r Record
				if err := json.Unmarshal([]byte(l), &r); err != nil {
					t.Fatalf("line %.60q: %v", l, err)
				}
				seen[r.RequestID] = true
			}
			if len(seen) != 1000 {
				t.Errorf("%d records in the file after SIGKILL, want all 1000 written", len(seen))
			}
		})
	}
}

// TestFileSinkAfterCutLine: a file that ends in half a line (a group
// write cut short by a kill or a full disk) gets its next record on a
// line of its own: the half line stays one unparseable line, every other
// line parses.
func TestFileSinkAfterCutLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "requests.jsonl")
	if err := os.WriteFile(path, []byte(`{"request_id":"whole"}`+"\n"+`{"request_id":"cu`), 0o644); err != nil {
		t.Fatal(err)
	}
	sink, err := OpenFileSink(path, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sink.Write(&Record{RequestID: "next"})
	if err := sink.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 3 || lines[1] != `{"request_id":"cu` {
		t.Fatalf("lines %q: want the whole line, the cut one alone, the new one", lines)
	}
	var r Record
	if err := json.Unmarshal([]byte(lines[2]), &r); err != nil || r.RequestID != "next" {
		t.Errorf("new line %q: %v", lines[2], err)
	}
}
