package app

import (
	"strings"
	"testing"
)

// The checks hold back the body-phase reply, which Envoy waits for only
// message_timeout: a timeout that leaves less than the rest of the body
// phase needs (200 ms and the gate's redis-timeout: 250 ms at the
// defaults) of message-timeout is refused at start, and the URLs must be
// an operator's http(s) URLs.
func TestScreenSettings(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" for no error
	}{
		{nil, ""},
		{[]string{"--moderation-url", "http://127.0.0.1:9000", "--llm-security-url", "http://guard.svc/predict", "--llm-security-threshold", "0.9"}, ""},
		{[]string{"--moderation-timeout", "2s"}, "moderation-timeout"},
		{[]string{"--llm-security-timeout", "3s", "--message-timeout", "3s"}, "llm-security-timeout"},
		{[]string{"--llm-security-timeout", "2.75s", "--message-timeout", "3s"}, ""},
		{[]string{"--llm-security-timeout", "2.8s", "--message-timeout", "3s"}, "llm-security-timeout"},
		{[]string{"--llm-security-timeout", "2s", "--message-timeout", "3s", "--redis-timeout", "1s"}, "llm-security-timeout"},
		{[]string{"--moderation-timeout", "1.9s"}, "moderation-timeout"},
		{[]string{"--moderation-url", "api.openai.com"}, "moderation-url"},
		{[]string{"--llm-security-url", "https://user:secret@guard.example/predict"}, "llm-security-url"},
		{[]string{"--llm-security-threshold", "1.5"}, "llm-security-threshold"},
		{[]string{"--screen-max-in-flight", "0"}, "screen-max-in-flight"},
	} {
		_, _, err := loadConfig("serve", tc.args, env(nil), false)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: error %v, want one naming %s", tc.args, err, tc.want)
		}
	}
}
