package processor

import "testing"

// TestClientErrorBodyGolden pins the exact bytes of the processor's own
// replies, escaping included: messages quote the client's values.
func TestClientErrorBodyGolden(t *testing.T) {
	for _, c := range []struct {
		err  *clientError
		body string
	}{
		{badRequest("invalid_header", "Helicone-Cache-Enabled must be true or false, got %q", "yes"),
			`{"error":{"code":"invalid_header","message":"Helicone-Cache-Enabled must be true or false, got \"yes\"","type":"tollgate_error"}}`},
		{&clientError{status: 401, code: "unauthorized", message: "<b>&</b> \"q\" \\ \n\r\t\b\f\x01\x7f é \u2028\u2029 \xff"},
			`{"error":{"code":"unauthorized","message":"\u003cb\u003e\u0026\u003c/b\u003e \"q\" \\ \n\r\t\b\f\u0001` + "\x7f" + ` é \u2028\u2029 \ufffd","type":"tollgate_error"}}`},
	} {
		if got := string(c.err.body()); got != c.body {
			t.Errorf("body\n got %s\nwant %s", got, c.body)
		}
	}
}
