package helicone_test

import (
	"testing"

	"github.com/tollgate-dev/tollgate/helicone"
)

// TestSwitchesReadAlike: every switch header is read by one rule. Helicone
// turns each on only for "true" and reads any other value as off
// (worker/src/lib/models/HeliconeHeaders.ts: cacheEnabled, retryHeaders
// .enabled, omitHeaders, featureFlags.streamUsage, moderationsEnabled all
// compare with "true"); Tollgate also takes "true" in any case, reads
// "false" in any case and an empty value as off without a word, and any
// other value ("1", "yes") as off with a warning naming the header.
func TestSwitchesReadAlike(t *testing.T) {
	on := func(h *helicone.Headers, key string) bool {
		switch key {
		case helicone.OmitRequest:
			return h.OmitRequest
		case helicone.OmitResponse:
			return h.OmitResponse
		case helicone.StreamUsage:
			return h.StreamUsage
		case helicone.ModerationsEnabled:
			return h.Moderations
		case helicone.LLMSecurityEnabled:
			return h.LLMSecurity
		case helicone.LLMSecurityAdvanced:
			return h.LLMSecurityAdvanced
		}
		t.Fatalf("no field for %s", key)
		return false
	}
	keys := []string{helicone.OmitRequest, helicone.OmitResponse, helicone.StreamUsage,
		helicone.ModerationsEnabled, helicone.LLMSecurityEnabled, helicone.LLMSecurityAdvanced}
	for _, tc := range []struct {
		value string
		on    bool
		warn  bool
	}{
		{"true", true, false}, {"True", true, false}, {" TRUE ", true, false},
		{"false", false, false}, {"FALSE", false, false}, {"", false, false},
		{"1", false, true}, {"0", false, true}, {"yes", false, true}, {"on", false, true},
	} {
		for _, key := range keys {
			var h helicone.Headers
			if err := h.Add(key, tc.value); err != nil {
				t.Fatalf("Add(%s, %q): %v", key, tc.value, err)
			}
			if got := on(&h, key); got != tc.on {
				t.Errorf("%s: %q read as on=%v, want %v", key, tc.value, got, tc.on)
			}
			if warned := len(h.Warnings.List) > 0; warned != tc.warn {
				t.Errorf("%s: %q warnings %v, want a warning: %v", key, tc.value, h.Warnings.List, tc.warn)
			}
		}
		// Helicone-Retry-Enabled and the cache switches are kept raw here
		// and read with the same function where they apply.
		s, ok := helicone.ReadSwitch(tc.value)
		if (s == helicone.SwitchOn) != tc.on || ok == tc.warn {
			t.Errorf("ReadSwitch(%q) = %v, %v", tc.value, s, ok)
		}
	}
}
