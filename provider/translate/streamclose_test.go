package translate

import "testing"

// Once a stream's terminal event (message_stop, [DONE]) has been written,
// Close owes nothing: a data plane that cannot send bytes after the
// upstream body ends (Envoy in STREAMED mode when trailers end it) loses
// nothing of a whole stream.
func TestCloseOwesNothingAfterTheTerminalEvent(t *testing.T) {
	for _, c := range streamCases {
		t.Run(c.in, func(t *testing.T) {
			tr := c.newT()
			if _, err := tr.Write(readStream(t, c.in)); err != nil {
				t.Fatal(err)
			}
			out, err := tr.Close()
			if err != nil || len(out) != 0 {
				t.Errorf("Close after a whole stream = %q, %v; want nothing", out, err)
			}
		})
	}
}
