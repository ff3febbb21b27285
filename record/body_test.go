package record

import "testing"

func TestCapBody(t *testing.T) {
	for _, c := range []struct {
		body string
		max  int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 5, "hello"},
		{"hello", 3, "hel"},
		{"", 3, ""},
	} {
		if got := CapBody(c.body, c.max); got != c.want {
			t.Errorf("CapBody(%q, %d) = %q, want %q", c.body, c.max, got, c.want)
		}
		if got := CapBody([]byte(c.body), c.max); got != c.want {
			t.Errorf("CapBody([]byte(%q), %d) = %q, want %q", c.body, c.max, got, c.want)
		}
	}
}
