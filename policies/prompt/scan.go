package prompt

import "strings"

// forwardIndex finds sep in s for positions asked in increasing order,
// reading each byte of s at most once: the occurrence found is the answer
// for every position up to it, and once there is none no later position
// has one. A scanner that searched the rest of the string at every
// candidate (an opening tag without its closing tag, a "{{" that is not a
// placeholder) was quadratic in the string's length.
type forwardIndex struct {
	s, sep  string
	at      int  // the first sep at or after the last position asked; -1: not searched yet
	none    bool // no sep at or after the last position asked
	scanned int  // bytes searched, for the tests that keep this linear
}

func newForwardIndex(s, sep string) forwardIndex {
	return forwardIndex{s: s, sep: sep, at: -1}
}

// from is the position of the first sep at or after i, -1 when there is
// none; i must not decrease between calls.
func (x *forwardIndex) from(i int) int {
	if x.none {
		return -1
	}
	if x.at >= i {
		return x.at
	}
	k := strings.Index(x.s[i:], x.sep)
	if k < 0 {
		x.scanned += len(x.s) - i
		x.none = true
		return -1
	}
	x.scanned += k + len(x.sep)
	x.at = i + k
	return x.at
}
