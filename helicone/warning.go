package helicone

import (
	"strconv"
	"strings"
)

// WarningHeader is the response header that tells the caller which of its
// Helicone-* request headers Tollgate ignored or corrected. Helicone itself
// tolerates such values silently (a non-UUID Helicone-Request-Id is
// replaced, "yes" does not turn a feature on, a malformed rate-limit policy
// is skipped); Tollgate does the same and says so here, so that a migrating
// application keeps working and its developers can still see the mistake.
const WarningHeader = "helicone-warning"

// MaxWarningValue bounds the Helicone-Warning value: clients cap the size of
// a response's headers (Node's http parser at 16 KiB in all), and a request
// with a hundred bad headers must not make its answer unreadable.
const MaxWarningValue = 1024

// Warning is one tolerated value: the header, canonically spelled, and what
// was done instead of answering 400.
type Warning struct {
	Header string // e.g. Helicone-Cache-Bucket-Max-Size
	Reason string // e.g. `"0" is not 1–20; the cache is off`
}

func (w Warning) String() string { return w.Header + " " + w.Reason }

// Warnings collects a call's warnings. The zero value is ready to use; a
// nil *Warnings ignores Add, so parsers can take one optionally.
type Warnings struct {
	List []Warning
}

// Add records that header (lowercase or canonical) was tolerated. A reason
// that quotes the value quotes it through Truncate, and never quotes a
// secret (Helicone-Auth, a provider key): the reason reaches the caller,
// the log record and the operator.
func (w *Warnings) Add(header, reason string) {
	if w == nil {
		return
	}
	if lower := strings.ToLower(header); strings.HasPrefix(lower, Prefix) {
		// Helicone's own spelling for a header of its directory
		// (Helicone-OpenAI-Api-Base), else Canonical's.
		if name, ok := known[lower]; ok {
			header = name
		} else {
			header = Canonical(lower)
		}
	}
	w.List = append(w.List, Warning{Header: header, Reason: reason})
}

// Value is the Helicone-Warning response header value: the warnings joined
// by "; ", or "" for none. It is printable ASCII only (an ellipsis becomes
// "...", anything else that is not printable ASCII '?', so no client's
// header parser can choke on it) and at most MaxWarningValue bytes:
// warnings that do not fit are counted at the end ("; ... 3 more").
func (w *Warnings) Value() string {
	if w == nil || len(w.List) == 0 {
		return ""
	}
	const reserve = len("; ... 9999 more")
	var b strings.Builder
	for i, x := range w.List {
		part := printableASCII(x.String())
		if i > 0 {
			part = "; " + part
		}
		last := i == len(w.List)-1
		if fits := b.Len() + len(part); fits > MaxWarningValue || !last && fits > MaxWarningValue-reserve {
			left := len(w.List) - i
			if i == 0 { // a single warning longer than the header: its start
				b.WriteString(part[:MaxWarningValue-reserve-len("...")] + "...")
				left--
			}
			if left > 0 {
				b.WriteString("; ... " + strconv.Itoa(left) + " more")
			}
			break
		}
		b.WriteString(part)
	}
	return b.String()
}

// printableASCII returns s with an ellipsis as "..." and every other rune
// that is not printable ASCII (control bytes, invalid UTF-8) as '?'.
func printableASCII(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '…':
			b.WriteString("...")
		case r < 0x20 || r > 0x7e:
			b.WriteByte('?')
		default:
			b.WriteByte(byte(r))
		}
	}
	return b.String()
}

// WarningLabel is the header label under which a warning is counted in
// metrics: its Directory name (Helicone-Property-<Name> for any property),
// else "other", so that the label set stays bounded whatever headers
// clients send.
func WarningLabel(header string) string {
	if name, ok := Known(header); ok {
		return name
	}
	return "other"
}
