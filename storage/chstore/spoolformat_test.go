package chstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/record"
)

// testSpool builds a version 2 file of n records and the offset of each
// frame.
func testSpool(n int) ([]byte, []*record.Record, []int) {
	var recs []*record.Record
	for i := range n {
		recs = append(recs, testRecord("spool", i, i%2 == 0))
	}
	data := appendSpool(nil, recs)
	offs := []int{spoolHeaderV2}
	for _, r := range recs[:n-1] {
		offs = append(offs, offs[len(offs)-1]+frameHeaderV2+len(appendRecord(nil, r)))
	}
	return data, recs, offs
}

func ids(recs []*record.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.RequestID)
	}
	return out
}

func TestSpoolTornTail(t *testing.T) {
	data, recs, offs := testSpool(10)
	rd, err := parseSpool(data)
	if err != nil || rd.torn != nil || rd.damaged() || !reflect.DeepEqual(rd.recs, recs) {
		t.Fatalf("intact file: %d records, torn %+v, damage %+v, err %v", len(rd.recs), rd.torn, rd.damage, err)
	}
	last := len(data) - offs[9]
	for _, cut := range []int{1, 4, frameHeaderV2 - 1, frameHeaderV2, frameHeaderV2 + 1, last - 1, last} {
		rd, err := parseSpool(data[:len(data)-cut])
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		if len(rd.recs) != 9 || rd.torn == nil || rd.damaged() || rd.lostTorn != 1 || rd.lostCorrupt != 0 || !rd.exact {
			t.Errorf("cut %d: %d records, torn %+v, damage %+v, lost %d+%d", cut, len(rd.recs), rd.torn, rd.damage, rd.lostTorn, rd.lostCorrupt)
		}
	}
	// The file grew but its last blocks never reached the disk: zeros.
	zeroed := slices.Clone(data)
	clear(zeroed[offs[7]:])
	if rd, _ := parseSpool(zeroed); len(rd.recs) != 7 || rd.torn == nil || rd.damaged() || rd.lostTorn != 3 {
		t.Errorf("zeroed tail: %d records, torn %+v, damage %+v, lost %d", len(rd.recs), rd.torn, rd.damage, rd.lostTorn)
	}
	// A header cut short: torn, nothing to replay. Garbage: not ours.
	for _, n := range []int{3, 8, 12} {
		if rd, err := parseSpool(data[:n]); err != nil || rd.torn == nil || len(rd.recs) != 0 || rd.damaged() {
			t.Errorf("header of %d bytes: %+v, %v", n, rd, err)
		}
	}
	if _, err := parseSpool([]byte("hello world, not a spool")); !errors.Is(err, errBadHeader) {
		t.Errorf("garbage: err %v", err)
	}
}

// TestSpoolDamageMiddle: one frame of 20 damaged in many ways; every
// other frame is read exactly once, the loss is exact, and the damage
// starts where the damaged frame did.
func TestSpoolDamageMiddle(t *testing.T) {
	const n, k = 20, 10
	data, recs, offs := testSpool(n)
	payload := offs[k] + frameHeaderV2
	garbage := bytes.Repeat([]byte("garbage!"), 40)
	for _, tc := range []struct {
		name   string
		damage func(b []byte) []byte
		lost   []int // indices of the records that cannot be read
		at     int   // offset of the damage
	}{
		{"flipped payload byte", func(b []byte) []byte { b[payload+5] ^= 0x10; return b }, []int{k}, offs[k]},
		{"flipped marker byte", func(b []byte) []byte { b[offs[k]+2] ^= 0x01; return b }, []int{k}, offs[k]},
		{"flipped length byte", func(b []byte) []byte { b[offs[k]+16] ^= 0x04; return b }, []int{k}, offs[k]},
		{"huge length", func(b []byte) []byte { b[offs[k]+19] = 0xff; return b }, []int{k}, offs[k]},
		{"flipped index byte", func(b []byte) []byte { b[offs[k]+8] ^= 0x01; return b }, []int{k}, offs[k]},
		{"zeroed range", func(b []byte) []byte { clear(b[payload+3 : payload+40]); return b }, []int{k}, offs[k]},
		{"zeroed across three frames", func(b []byte) []byte { clear(b[offs[k-1]+30 : offs[k+1]+30]); return b }, []int{k - 1, k, k + 1}, offs[k-1]},
		{"garbage between frames", func(b []byte) []byte { return slices.Insert(b, offs[k], garbage...) }, nil, offs[k]},
		{"garbage inside a frame", func(b []byte) []byte { return slices.Insert(b, payload+7, garbage...) }, []int{k}, offs[k]},
		{"marker inside garbage", func(b []byte) []byte {
			return slices.Insert(b, offs[k], slices.Concat(garbage, []byte(frameMarker), garbage)...)
		}, nil, offs[k]},
		{"middle cut out", func(b []byte) []byte { return slices.Delete(b, payload+3, payload+20) }, []int{k}, offs[k]},
		{"cut from one frame into the next", func(b []byte) []byte { return slices.Delete(b, payload+3, offs[k+1]+5) }, []int{k, k + 1}, offs[k]},
		{"header checksum", func(b []byte) []byte { b[9] ^= 0x01; return b }, nil, 8},
		{"first frame", func(b []byte) []byte { b[spoolHeaderV2+frameHeaderV2+1] ^= 0x80; return b }, []int{0}, offs[0]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rd, err := parseSpool(tc.damage(slices.Clone(data)))
			if err != nil {
				t.Fatal(err)
			}
			var want []*record.Record
			for i, r := range recs {
				if !slices.Contains(tc.lost, i) {
					want = append(want, r)
				}
			}
			if !reflect.DeepEqual(ids(rd.recs), ids(want)) || !reflect.DeepEqual(rd.recs, want) {
				t.Errorf("records %v, want %v", ids(rd.recs), ids(want))
			}
			if rd.lostCorrupt != len(tc.lost) || rd.lostTorn != 0 || !rd.exact || rd.torn != nil {
				t.Errorf("lost %d corrupt, %d torn (exact %v, torn %+v), want %d corrupt", rd.lostCorrupt, rd.lostTorn, rd.exact, rd.torn, len(tc.lost))
			}
			if len(rd.damage) != 1 || rd.damage[0].offset != int64(tc.at) {
				t.Errorf("damage %+v, want one region at %d", rd.damage, tc.at)
			}
		})
	}
}

// A damaged frame and a torn tail in one file: each loss in its place.
func TestSpoolDamageAndTear(t *testing.T) {
	data, _, offs := testSpool(10)
	b := slices.Clone(data[:len(data)-5])
	b[offs[3]+frameHeaderV2+2] ^= 0xff
	rd, err := parseSpool(b)
	if err != nil || len(rd.recs) != 8 || rd.lostCorrupt != 1 || rd.lostTorn != 1 || rd.torn == nil || len(rd.damage) != 1 {
		t.Errorf("%d records, lost %d+%d, torn %+v, damage %+v, err %v", len(rd.recs), rd.lostCorrupt, rd.lostTorn, rd.torn, rd.damage, err)
	}
}

// appendSpoolV1 writes the version 1 layout (what older binaries left).
func appendSpoolV1(b []byte, recs []*record.Record) []byte {
	b = append(b, spoolMagicV1...)
	for _, r := range recs {
		p := appendRecord(nil, r)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
		b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(p, castagnoli))
		b = append(b, p...)
	}
	return b
}

func TestSpoolVersion1(t *testing.T) {
	var recs []*record.Record
	for i := range 10 {
		recs = append(recs, testRecord("v1", i, i%2 == 0))
	}
	data := appendSpoolV1(nil, recs)
	rd, err := parseSpool(data)
	if err != nil || rd.version != 1 || rd.torn != nil || rd.damaged() || !reflect.DeepEqual(rd.recs, recs) {
		t.Fatalf("intact v1: %+v, %v", rd, err)
	}
	if rd, _ := parseSpool(data[:len(data)-3]); len(rd.recs) != 9 || rd.torn == nil || rd.damaged() {
		t.Errorf("torn v1: %d records, torn %+v, damage %+v", len(rd.recs), rd.torn, rd.damage)
	}
	// No resynchronisation in version 1: the frames after a bad one are
	// lost with it, and the count is a lower bound.
	off := len(spoolMagicV1)
	for _, r := range recs[:5] {
		off += frameHeaderV1 + len(appendRecord(nil, r))
	}
	bad := slices.Clone(data)
	bad[off+frameHeaderV1+3] ^= 0x10
	rd, err = parseSpool(bad)
	if err != nil || len(rd.recs) != 5 || len(rd.damage) != 1 || rd.damage[0].offset != int64(off) ||
		rd.damage[0].reason != "checksum mismatch" || rd.lostCorrupt != 1 || rd.exact {
		t.Errorf("flipped bit in v1: %d records, damage %+v, lost %d (exact %v), err %v", len(rd.recs), rd.damage, rd.lostCorrupt, rd.exact, err)
	}
}

// TestSpoolSetAside: a damaged file goes to corrupt/, which keeps at most
// a tenth of the cap (oldest evicted first).
func TestSpoolSetAside(t *testing.T) {
	dir := t.TempDir()
	sp, err := openSpool(dir, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	var sizes []int64
	for seq := uint64(1); seq <= 3; seq++ {
		size, err := sp.write(seq, []*record.Record{testRecord("aside", int(seq), true)})
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, size)
	}
	sp.max = (sizes[1] + sizes[2]) * 10 // room in corrupt/ for two
	for range 3 {
		f, _ := sp.head()
		if _, err := sp.setAside(f); err != nil {
			t.Fatal(err)
		}
	}
	if n, b := sp.stats(); n != 0 || b != 0 {
		t.Errorf("spool still holds %d files, %d bytes", n, b)
	}
	left, _ := os.ReadDir(dir + "/" + corruptDir)
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	if want := []string{spoolName(2), spoolName(3)}; !reflect.DeepEqual(names, want) {
		t.Errorf("corrupt/ holds %v, want %v", names, want)
	}
}

// FuzzParseSpool: spool files come from disk. Parsing never panics, the
// regions it reports lie inside the file in order, and losses are never
// negative. The seeds are in testdata/fuzz/FuzzParseSpool.
func FuzzParseSpool(f *testing.F) {
	data, _, offs := testSpool(3)
	f.Add(data)
	f.Add(data[:len(data)-7])
	f.Add(appendSpoolV1(nil, []*record.Record{testRecord("v1", 1, false)}))
	f.Add(slices.Insert(slices.Clone(data), offs[1], []byte(frameMarker+"xxxxyyyyzzzzwwww")...))
	seg, _ := segmentBytes([]*record.Record{testRecord("wal", 0, false), testRecord("wal", 1, false), testRecord("wal", 2, false)})
	f.Add(seg)
	f.Add(seg[:len(seg)-5])
	f.Fuzz(func(t *testing.T, b []byte) {
		rd, err := parseSpool(b)
		if err != nil {
			return
		}
		if rd.lostCorrupt < 0 || rd.lostTorn < 0 {
			t.Fatalf("negative loss: %d corrupt, %d torn", rd.lostCorrupt, rd.lostTorn)
		}
		end := int64(0)
		for _, r := range rd.damage {
			if r.offset < end || r.length < 0 || r.offset+r.length > int64(len(b)) {
				t.Fatalf("damage %+v out of place (file %d bytes)", rd.damage, len(b))
			}
			end = r.offset + r.length
		}
		if rd.torn != nil && (rd.torn.offset < end || rd.torn.offset+rd.torn.length != int64(len(b))) {
			t.Fatalf("torn %+v does not end the file (%d bytes, damage %+v)", rd.torn, len(b), rd.damage)
		}
		for _, r := range rd.recs {
			if _, err := decodeRecord(appendRecord(nil, r)); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestDamagedSpoolReplayed: one frame in the middle of a spool file is
// damaged; a new writer replays every other record exactly once, counts
// the lost record and the file once, logs the file and the offset, and
// keeps the file in corrupt/.
func TestDamagedSpoolReplayed(t *testing.T) {
	url, db, conn := testDB(t, sharedURL(t))
	dir := t.TempDir()
	down, _ := openWriter(t, Options{URL: deadURL(t, db), SpoolDir: dir, BatchSize: 100})
	for i := range 450 {
		down.Write(testRecord("damaged", i, i%3 == 0))
	}
	if err := down.Close(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	files, err := scanSpoolDir(dir)
	if err != nil || len(files) != 5 {
		t.Fatalf("%d spool files (%v), want 5", len(files), err)
	}
	f := files[2]
	data, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	off := spoolHeaderV2
	for range 50 { // the frame of the 51st record of 100
		off += frameHeaderV2 + int(binary.LittleEndian.Uint32(data[off+16:]))
	}
	data[off+frameHeaderV2+5] ^= 0x01
	if err := os.WriteFile(f.path, data, 0o600); err != nil {
		t.Fatal(err)
	}

	w, lb := openWriter(t, Options{URL: url, SpoolDir: dir})
	if err := w.Close(ctxT(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	final, distinct, raw := counts(t, conn, db, "")
	if final != 449 || distinct != 449 || raw != 449 {
		t.Errorf("rows %d (distinct %d, raw %d), want 449 once: all but the damaged record", final, distinct, raw)
	}
	if got := metric(w.m.dropped.WithLabelValues(dropCorrupt)); got != 1 {
		t.Errorf("dropped{corrupt} %d, want 1", got)
	}
	if got := metric(w.m.spoolCorrupt); got != 1 {
		t.Errorf("spool_corrupt %d, want 1", got)
	}
	if got := metric(w.m.replayed); got != 449 {
		t.Errorf("replayed %d, want 449", got)
	}
	if !lb.Contains(f.path) || !lb.Contains("offset="+strconv.Itoa(off)) {
		t.Errorf("damage not logged with file and offset %d:\n%s", off, lb.String())
	}
	kept, err := os.ReadFile(filepath.Join(dir, corruptDir, filepath.Base(f.path)))
	if err != nil || !bytes.Equal(kept, data) {
		t.Errorf("damaged file not kept in %s/ as it was (%v)", corruptDir, err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 2 {
		t.Errorf("spool dir holds %v, want the lock and %s/", left, corruptDir)
	}
}

// TestDamagedSpoolCountedOnce: a damaged file whose replay fails is read
// again on the next try; its loss counts once, when it is moved aside.
func TestDamagedSpoolCountedOnce(t *testing.T) {
	dir := t.TempDir()
	sp, err := openSpool(dir, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var recs []*record.Record
	for i := range 5 {
		recs = append(recs, testRecord("once", i, false))
	}
	if _, err := sp.write(1, recs); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, spoolName(1))
	sp.close()
	data, _ := os.ReadFile(path)
	data[spoolHeaderV2+frameHeaderV2+1] ^= 0xff // record 0
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}

	f := &fakeSender{down: true}
	w, lb := newFakeWriter(t, f, Options{SpoolDir: dir})
	testenv.WaitFor(t, 10*time.Second, "a failed replay", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.inserts > 0 && f.pings > 0
	})
	if c, d := metric(w.m.spoolCorrupt), dropped(w, dropCorrupt); c != 0 || d != 0 {
		t.Errorf("before the replay succeeded: spool_corrupt %d, dropped{corrupt} %d, want 0", c, d)
	}
	f.setDown(false)
	testenv.WaitFor(t, 20*time.Second, "damaged file set aside", func() bool { n, _ := w.spool.stats(); return n == 0 })
	if got, want := f.ids(), ids(recs[1:]); !slices.Equal(got, want) {
		t.Errorf("replayed %v, want %v", got, want)
	}
	if c, d := metric(w.m.spoolCorrupt), dropped(w, dropCorrupt); c != 1 || d != 1 {
		t.Errorf("spool_corrupt %d, dropped{corrupt} %d, want 1 and 1", c, d)
	}
	if !lb.Contains(path) || !lb.Contains("offset="+strconv.Itoa(spoolHeaderV2)) {
		t.Errorf("file and offset not logged:\n%s", lb.String())
	}
	if _, err := os.Stat(filepath.Join(dir, corruptDir, spoolName(1))); err != nil {
		t.Errorf("damaged file not in %s/: %v", corruptDir, err)
	}
}
