package chstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"

	"github.com/tollgate-dev/tollgate/record"
)

// A spool file, format version 2 (integers little-endian):
//
//	header  "TGSPOOL\x02", count uint32 (records in the file), then a
//	        CRC-32C (Castagnoli) of those 12 bytes: 16 bytes
//	frames  one per record:
//	          marker  frameMarker, the same 8 bytes in every frame
//	          index   uint32, the record's place in the file (0, 1, …)
//	          count   uint32, the header's count again
//	          length  uint32, of the payload
//	          crc     uint32, CRC-32C of index, count, length and payload
//	          payload see codec.go
//
// The marker lets a reader find the frames after a damaged one: it scans
// forward to the next marker and takes the frame there only if its length
// is plausible and its checksum matches (a marker inside a payload fails
// the checksum). Index and count make the loss exact: the records missing
// from a file are count minus the frames read, even when the header is
// damaged (every frame repeats the count).
//
// Version 1 (written before) has an 8-byte header "TGSPOOL\x01" and frames
// of length, crc and payload only: nothing to resynchronise on, so its
// reader stops at the first bad frame as it always did, and the number of
// records lost there is unknown (counted as one, a lower bound).
//
// A file that ends inside a frame (or in zeros: a crash after the file
// grew but before its data reached the disk) is torn: the writer died
// while writing it, before the batch counted as spooled. Damage is
// anything else that cannot be read.
//
// A segment of the write-ahead log (wal.go) is the same format written one
// frame at a time: its header and frames carry the count openCount
// (0xFFFFFFFF, "not known: appended to until it was closed"), and its
// indexes count up from 0. Its losses are exact for frames missing
// between two that were read; a torn or damaged tail counts one record,
// a lower bound (how many frames it held is not written anywhere).
const (
	spoolMagicV1   = "TGSPOOL\x01"
	spoolMagicV2   = "TGSPOOL\x02"
	spoolHeaderV2  = 16
	frameHeaderV1  = 8
	frameHeaderV2  = 24
	frameMarker    = "\xd1\x7a\x3c\xe6\x05\x9b\x48\xf2"
	maxFrameBytes  = 256 << 20 // larger lengths are corruption, not data
	spoolMagicPfx  = "TGSPOOL"
	openCount      = 0xFFFFFFFF // the count of a WAL segment (open-ended)
	reasonTruncHdr = "truncated header"
)

var (
	castagnoli   = crc32.MakeTable(crc32.Castagnoli)
	errBadHeader = errors.New("not a Tollgate spool file")
)

// appendSpool appends the version 2 file holding recs to b.
func appendSpool(b []byte, recs []*record.Record) []byte {
	b = appendSpoolHeader(b, uint32(len(recs)))
	for i, r := range recs {
		f := len(b)
		b = appendFrame(b, uint32(len(recs)), r)
		sumFrame(b[f:], uint32(i))
	}
	return b
}

// appendSpoolHeader appends a version 2 header for count records.
func appendSpoolHeader(b []byte, count uint32) []byte {
	start := len(b)
	b = append(b, spoolMagicV2...)
	b = binary.LittleEndian.AppendUint32(b, count)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// appendFrame appends r's frame without its index and checksum, which
// sumFrame sets (the WAL learns the index only when it takes the frame).
func appendFrame(b []byte, count uint32, r *record.Record) []byte {
	f := len(b)
	b = append(b, frameMarker...)
	b = append(b, 0, 0, 0, 0) // index
	b = binary.LittleEndian.AppendUint32(b, count)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0) // length, crc
	b = appendRecord(b, r)
	binary.LittleEndian.PutUint32(b[f+16:], uint32(len(b)-f-frameHeaderV2))
	return b
}

// sumFrame sets the index and the checksum of frame, one whole frame.
func sumFrame(frame []byte, idx uint32) {
	binary.LittleEndian.PutUint32(frame[8:], idx)
	sum := crc32.Update(crc32.Checksum(frame[8:20], castagnoli), castagnoli, frame[frameHeaderV2:])
	binary.LittleEndian.PutUint32(frame[20:], sum)
}

// spoolRegion is a run of bytes that could not be read.
type spoolRegion struct {
	offset, length int64
	reason         string // of its first bad frame: "checksum mismatch", …
}

// spoolRead is what one file yields.
type spoolRead struct {
	recs    []*record.Record
	version int
	damage  []spoolRegion // unreadable bytes that are not a torn tail
	torn    *spoolRegion  // the tail the writer never finished
	// Records lost to damage and to the torn tail: exact when exact is
	// set, else lower bounds (one per region that holds part of a frame).
	lostCorrupt, lostTorn int
	exact                 bool
	size                  int64 // of the file (version 2)
}

func (r *spoolRead) damaged() bool { return len(r.damage) > 0 }

// readSpoolFile reads one spool file. errBadHeader means it is not a spool
// file at all; damage and tears are in the result, not errors.
func readSpoolFile(path string) (*spoolRead, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseSpool(data)
}

func parseSpool(data []byte) (*spoolRead, error) {
	switch {
	case len(data) < len(spoolMagicV2):
		if n := min(len(data), len(spoolMagicPfx)); string(data[:n]) == spoolMagicPfx[:n] {
			// Killed before the header was complete.
			return &spoolRead{torn: &spoolRegion{0, int64(len(data)), reasonTruncHdr}, exact: true}, nil
		}
	case string(data[:len(spoolMagicV1)]) == spoolMagicV1:
		return parseSpoolV1(data), nil
	case string(data[:len(spoolMagicV2)]) == spoolMagicV2:
		return parseSpoolV2(data), nil
	}
	return nil, errBadHeader
}

func parseSpoolV2(data []byte) *spoolRead {
	rd := &spoolRead{version: 2, size: int64(len(data))}
	if len(data) < spoolHeaderV2 {
		rd.torn, rd.exact = &spoolRegion{0, int64(len(data)), reasonTruncHdr}, true
		return rd
	}
	count := int64(-1) // unknown until the header or a frame says
	if crc32.Checksum(data[:12], castagnoli) == binary.LittleEndian.Uint32(data[12:]) {
		count = int64(binary.LittleEndian.Uint32(data[8:]))
	} else {
		rd.damage = append(rd.damage, spoolRegion{8, 8, "header checksum mismatch"})
	}
	seen := map[uint32]bool{}
	last := int64(-1) // index of the last frame read
	top := int64(-1)  // the highest index read
	bad, badReason := -1, ""
	pos := spoolHeaderV2
	for pos < len(data) {
		rec, idx, cnt, size, reason := parseFrameV2(data[pos:])
		if reason == "" && count < 0 {
			count = int64(cnt)
		}
		if reason == "" && (int64(cnt) != count || int64(idx) >= count || seen[idx]) {
			reason = "frame does not belong to this file"
		}
		if reason == "" {
			if bad >= 0 {
				rd.damage = append(rd.damage, spoolRegion{int64(bad), int64(pos - bad), badReason})
				bad = -1
			}
			seen[idx] = true
			last = int64(idx)
			top = max(top, last)
			rd.recs = append(rd.recs, rec)
			pos += size
			continue
		}
		if bad < 0 {
			bad, badReason = pos, reason
		}
		next := bytes.Index(data[pos+1:], []byte(frameMarker))
		if next < 0 {
			break
		}
		pos += 1 + next
	}
	if bad >= 0 {
		r := spoolRegion{int64(bad), int64(len(data) - bad), badReason}
		if tornFrame(data[bad:]) {
			rd.torn = &r
		} else {
			rd.damage = append(rd.damage, r)
		}
	}
	if count < 0 { // header and every frame damaged
		for _, r := range rd.damage {
			if r.offset >= spoolHeaderV2 {
				rd.lostCorrupt++
			}
		}
		if rd.torn != nil {
			rd.lostTorn = 1
		}
		return rd
	}
	if count == openCount {
		return lostOpen(rd, top)
	}
	rd.exact = true
	missing := int(count) - len(rd.recs)
	if rd.torn != nil || !rd.damaged() && missing > 0 {
		// The records after the last one read were never written.
		rd.lostTorn = int(count - 1 - last)
		for i := range seen {
			if int64(i) > last {
				rd.lostTorn-- // read out of order, before the tear
			}
		}
		if rd.torn == nil {
			rd.torn = &spoolRegion{int64(len(data)), 0, "file ends before its last record"}
		}
	}
	rd.lostCorrupt = missing - rd.lostTorn
	if rd.lostCorrupt > 0 && !rd.damaged() {
		// Frames read out of order around a tear: still records lost.
		rd.damage = append(rd.damage, spoolRegion{rd.torn.offset, 0, "records missing before the torn tail"})
	}
	return rd
}

// lostOpen counts the losses of an open-ended file (a WAL segment), whose
// last index is not known: the frames missing below the highest index
// read exactly, and one record for a torn or damaged tail past it.
func lostOpen(rd *spoolRead, top int64) *spoolRead {
	rd.exact = true
	rd.lostCorrupt = int(top+1) - len(rd.recs)
	if rd.torn != nil {
		rd.lostTorn, rd.exact = 1, false
	}
	if n := len(rd.damage); n > 0 && rd.damage[n-1].offset+rd.damage[n-1].length == rd.size {
		rd.lostCorrupt++ // damage up to the end: frames past the last index read
		rd.exact = false
	}
	if rd.lostCorrupt > 0 && !rd.damaged() {
		at := rd.size
		if rd.torn != nil {
			at = rd.torn.offset
		}
		rd.damage = append(rd.damage, spoolRegion{at, 0, "records missing between frames"})
	}
	return rd
}

// parseFrameV2 reads the frame at the start of b; reason is "" when it is
// whole and its checksum matches.
func parseFrameV2(b []byte) (rec *record.Record, idx, cnt uint32, size int, reason string) {
	if n := min(len(b), len(frameMarker)); string(b[:n]) != frameMarker[:n] {
		return nil, 0, 0, 0, "no frame marker"
	}
	if len(b) < frameHeaderV2 {
		return nil, 0, 0, 0, "truncated frame header"
	}
	idx = binary.LittleEndian.Uint32(b[8:])
	cnt = binary.LittleEndian.Uint32(b[12:])
	n := binary.LittleEndian.Uint32(b[16:])
	if n > maxFrameBytes {
		return nil, 0, 0, 0, "implausible frame length"
	}
	if uint64(len(b)-frameHeaderV2) < uint64(n) {
		return nil, 0, 0, 0, "truncated frame"
	}
	payload := b[frameHeaderV2 : frameHeaderV2+int(n)]
	if crc32.Update(crc32.Checksum(b[8:20], castagnoli), castagnoli, payload) != binary.LittleEndian.Uint32(b[20:]) {
		return nil, 0, 0, 0, "checksum mismatch"
	}
	r, err := decodeRecord(payload)
	if err != nil {
		return nil, 0, 0, 0, err.Error()
	}
	return r, idx, cnt, frameHeaderV2 + int(n), ""
}

// tornFrame: b, the rest of a file, is the start of a frame the writer
// did not finish, or zeros.
func tornFrame(b []byte) bool {
	if len(bytes.Trim(b, "\x00")) == 0 {
		return true
	}
	if n := min(len(b), len(frameMarker)); string(b[:n]) != frameMarker[:n] {
		return false
	}
	if len(b) < frameHeaderV2 {
		return true
	}
	n := binary.LittleEndian.Uint32(b[16:])
	return n <= maxFrameBytes && uint64(n)+frameHeaderV2 > uint64(len(b))
}

// parseSpoolV1 reads a version 1 file up to its first bad frame.
func parseSpoolV1(data []byte) *spoolRead {
	rd := &spoolRead{version: 1}
	off := len(spoolMagicV1)
	for off < len(data) {
		r, size, reason := parseFrameV1(data[off:])
		if reason != "" {
			reg := spoolRegion{int64(off), int64(len(data) - off), reason}
			if reason == "truncated frame header" || reason == "truncated frame" {
				rd.torn, rd.lostTorn = &reg, 1
			} else {
				rd.damage, rd.lostCorrupt = []spoolRegion{reg}, 1
			}
			return rd
		}
		rd.recs = append(rd.recs, r)
		off += size
	}
	rd.exact = true
	return rd
}

func parseFrameV1(b []byte) (*record.Record, int, string) {
	if len(b) < frameHeaderV1 {
		return nil, 0, "truncated frame header"
	}
	n := binary.LittleEndian.Uint32(b)
	if n > maxFrameBytes {
		return nil, 0, "implausible frame length"
	}
	if uint64(len(b)-frameHeaderV1) < uint64(n) {
		return nil, 0, "truncated frame"
	}
	payload := b[frameHeaderV1 : frameHeaderV1+int(n)]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, 0, "checksum mismatch"
	}
	r, err := decodeRecord(payload)
	if err != nil {
		return nil, 0, err.Error()
	}
	return r, frameHeaderV1 + int(n), ""
}
