package attempts

import (
	"math"
	"strconv"
	"strings"
)

// Helicone reads its numeric headers with JavaScript's parseInt and
// parseFloat, which take the longest numeric prefix and ignore the rest;
// these do the same, so a header means in Tollgate what it means there.

// parseInt is JavaScript's parseInt(v, 10): an optional sign and the
// leading decimal digits, the rest ignored. ok is false for NaN; whole says
// the digits were all of v. Values saturate far beyond any use.
func parseInt(v string) (n int64, ok, whole bool) {
	i, neg := 0, false
	if i < len(v) && (v[i] == '+' || v[i] == '-') {
		neg = v[i] == '-'
		i++
	}
	start := i
	for ; i < len(v) && v[i] >= '0' && v[i] <= '9'; i++ {
		if n < 1<<40 {
			n = n*10 + int64(v[i]-'0')
		}
	}
	if i == start {
		return 0, false, false
	}
	if neg {
		n = -n
	}
	return n, true, i == len(v)
}

// parseFloat is JavaScript's parseFloat: the longest prefix of v that is a
// decimal literal (or Infinity), the rest ignored.
func parseFloat(v string) (f float64, ok, whole bool) {
	i := 0
	if i < len(v) && (v[i] == '+' || v[i] == '-') {
		i++
	}
	if strings.HasPrefix(v[i:], "Infinity") {
		i += len("Infinity")
		f, _ = strconv.ParseFloat(v[:i], 64)
		return f, true, i == len(v)
	}
	digits := func() int {
		s := i
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
		}
		return i - s
	}
	n := digits()
	if i < len(v) && v[i] == '.' {
		i++
		if n += digits(); n == 0 {
			i--
		}
	}
	if n == 0 {
		return 0, false, false
	}
	if i < len(v) && (v[i] == 'e' || v[i] == 'E') {
		j := i
		i++
		if i < len(v) && (v[i] == '+' || v[i] == '-') {
			i++
		}
		if digits() == 0 {
			i = j
		}
	}
	f, err := strconv.ParseFloat(v[:i], 64)
	if err != nil && !math.IsInf(f, 0) {
		return 0, false, false
	}
	return f, true, i == len(v)
}
