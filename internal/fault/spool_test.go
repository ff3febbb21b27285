package fault

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/internal/testenv"
)

// TestDamagedSpoolFile: calls are answered while ClickHouse is down, so
// their records are spooled; tollgate stops; one frame of a spool file is
// damaged on disk (a flipped byte, as a bad sector would); ClickHouse and
// tollgate start again on the same folder. Every readable record is
// inserted, exactly the damaged frame's record is counted as dropped
// (reason corrupt), and the file is moved to corrupt/.
func TestDamagedSpoolFile(t *testing.T) {
	ch := testenv.StartClickHouse(t)
	t.Cleanup(func() {
		if ch.Running() {
			ch.Kill()
		}
	})
	db := newLogDB(t, ch.URL(), "spool")
	s := newStack(t, "--clickhouse", db.url)
	n, conc := size(100, 3000), size(8, 16)
	g := s.start(t)
	db.waitMigrated()
	ch.Kill()

	b := newBurst()
	b.drive(context.Background(), g.url(""), call{path: "/v1/chat/completions", body: chatBody}, n, conc, float64(size(0, 200)))
	g.stop() // ClickHouse is down: the shutdown spools what is left
	sent, answered := b.ids(200)
	if len(answered) != n {
		t.Fatalf("%d of %d calls answered while ClickHouse was down", len(answered), n)
	}

	files, spooled := spoolFiles(t, s.spoolDir)
	if spooled != n {
		t.Fatalf("%d records in %d spool files, want the %d calls", spooled, len(files), n)
	}
	// The biggest file, its middle frame.
	victim := files[0]
	for _, f := range files {
		if f.count > victim.count {
			victim = f
		}
	}
	damagedID := damageFrame(t, victim, victim.count/2, answered)

	ch.Start()
	g = s.start(t)
	var c tally
	testenv.Eventually(t, 120*time.Second, func() error {
		var err error
		if c, err = db.count(""); err != nil {
			return err
		}
		if c.final < n-1 {
			return fmt.Errorf("%d rows, want %d", c.final, n-1)
		}
		if _, err := os.Stat(filepath.Join(s.spoolDir, "corrupt", filepath.Base(victim.path))); err != nil {
			return fmt.Errorf("the damaged file is not in corrupt/: %v", err)
		}
		return nil
	})
	corrupt := g.metric("tollgate_log_rows_dropped_total", `reason="corrupt"`)
	torn := g.metric("tollgate_log_rows_dropped_total", `reason="torn"`)
	g.stop()
	c, err := db.count("")
	if err != nil {
		t.Fatal(err)
	}
	lost, missing := c.lost(answered)
	report(t, figures{scenario: "damaged spool file (one frame)", sent: len(sent), answered: len(answered),
		rows: c.final, lost: lost - int(corrupt), duplicated: c.duplicated(), dropped: int(corrupt),
		note: fmt.Sprintf("%d spooled in %d files; the damaged frame's record is the one lost", spooled, len(files))})
	if c.final != spooled-1 || corrupt != 1 || torn != 0 || c.duplicated() != 0 {
		t.Errorf("rows %d of %d spooled, dropped corrupt %v torn %v, duplicated %d: want %d rows and exactly 1 corrupt drop",
			c.final, spooled, corrupt, torn, c.duplicated(), spooled-1)
	}
	if lost != 1 || (damagedID != "" && c.perID[damagedID] != 0) {
		t.Errorf("answered calls without a row: %v, want only the damaged frame's %s", missing, damagedID)
	}
}

// spoolFile is one spool file and the record count its header gives.
type spoolFile struct {
	path  string
	count int
}

// spoolFiles lists the spool files (format version 2, see
// storage/chstore/spoolformat.go) and the records they hold.
func spoolFiles(t *testing.T, dir string) ([]spoolFile, int) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.spool"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no spool files in the spool folder (%v)", err)
	}
	var files []spoolFile
	total := 0
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) < 16 || string(data[:8]) != "TGSPOOL\x02" {
			t.Fatalf("%s: not a version 2 spool file", p)
		}
		n := int(binary.LittleEndian.Uint32(data[8:]))
		files = append(files, spoolFile{p, n})
		total += n
	}
	return files, total
}

// damageFrame flips one byte in the payload of frame i of f, so its
// checksum fails while the frames around it stay whole, and returns the
// request id the frame held (found as text or as 16 bytes in the payload;
// "" if neither).
func damageFrame(t *testing.T, f spoolFile, i int, ids []string) string {
	t.Helper()
	data, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	// Version 2: a 16-byte header, then frames of marker (8), index (4),
	// count (4), length (4), crc (4) and the payload.
	off := 16
	for k := 0; ; k++ {
		if off+24 > len(data) {
			t.Fatalf("%s: frame %d not found", f.path, i)
		}
		length := int(binary.LittleEndian.Uint32(data[off+16:]))
		if k < i {
			off += 24 + length
			continue
		}
		payload := data[off+24 : off+24+length]
		found := ""
		for _, id := range ids {
			u := uuid.MustParse(id)
			if bytes.Contains(payload, []byte(id)) || bytes.Contains(payload, u[:]) {
				found = id
				break
			}
		}
		payload[length/2] ^= 0xff
		if err := os.WriteFile(f.path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Logf("damaged frame %d of %d in %s (offset %d, %d bytes; request %s)", i, f.count,
			strings.TrimPrefix(f.path, filepath.Dir(f.path)+"/"), off, length, found)
		return found
	}
}
