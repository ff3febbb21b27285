package helicone

import (
	"strings"
)

// WarningHeader is the response header that tells the caller which of its
// Helicone-* request headers Tollgate ignored or corrected. Helicone itself
// tolerates such values silently (a non-UUID Helicone-Request-Id is
// replaced, "yes" does not turn a feature on, a malformed rate-limit policy
// is skipped); Tollgate does the same and says so here, so that a migrating
// application keeps working and its developers can still see the mistake.
const WarningHeader = "helicone-warning"

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

// Add records that header (lowercase or canonical) was tolerated.
func (w *Warnings) Add(header, reason string) {
	if w == nil {
		return
	}
	if strings.HasPrefix(header, Prefix) {
		header = Canonical(header)
	}
	w.List = append(w.List, Warning{Header: header, Reason: reason})
}

// Value is the Helicone-Warning response header value: the warnings joined
// by "; ", or "" for none.
func (w *Warnings) Value() string {
	if w == nil || len(w.List) == 0 {
		return ""
	}
	parts := make([]string, len(w.List))
	for i, x := range w.List {
		parts[i] = x.String()
	}
	return strings.Join(parts, "; ")
}
