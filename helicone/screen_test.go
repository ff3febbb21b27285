package helicone_test

import (
	"testing"

	"github.com/tollgate-dev/tollgate/helicone"
)

// TestScreenSwitches: Helicone turns moderation on for "true" and reads
// Helicone-LLM-Security-Enabled, else the older
// Helicone-Prompt-Security-Enabled, and Helicone-LLM-Security-Advanced
// (worker/src/lib/models/HeliconeHeaders.ts, getHeliconeHeaders). Other
// values turn a check off without a 400, as there, with a warning here.
func TestScreenSwitches(t *testing.T) {
	for _, tc := range []struct {
		name                           string
		headers                        [][2]string
		moderations, security, advance bool
		warnings                       int
	}{
		{"none", nil, false, false, false, 0},
		{"all on", [][2]string{{helicone.ModerationsEnabled, "true"}, {helicone.LLMSecurityEnabled, "True"}, {helicone.LLMSecurityAdvanced, "TRUE"}}, true, true, true, 0},
		{"1 is not true", [][2]string{{helicone.ModerationsEnabled, "1"}, {helicone.LLMSecurityEnabled, "1"}}, false, false, false, 2},
		{"false", [][2]string{{helicone.ModerationsEnabled, "false"}, {helicone.LLMSecurityEnabled, "false"}}, false, false, false, 0},
		{"not a switch", [][2]string{{helicone.ModerationsEnabled, "yes"}}, false, false, false, 1},
		{"older name alone", [][2]string{{helicone.PromptSecurityEnabled, "true"}}, false, true, false, 0},
		{"newer name wins, after", [][2]string{{helicone.PromptSecurityEnabled, "true"}, {helicone.LLMSecurityEnabled, "false"}}, false, false, false, 0},
		{"newer name wins, before", [][2]string{{helicone.LLMSecurityEnabled, "false"}, {helicone.PromptSecurityEnabled, "true"}}, false, false, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h helicone.Headers
			for _, kv := range tc.headers {
				if err := h.Add(kv[0], kv[1]); err != nil {
					t.Fatalf("Add(%s): %v", kv[0], err)
				}
			}
			if h.Moderations != tc.moderations || h.LLMSecurity != tc.security || h.LLMSecurityAdvanced != tc.advance {
				t.Errorf("got moderations=%v security=%v advanced=%v", h.Moderations, h.LLMSecurity, h.LLMSecurityAdvanced)
			}
			if len(h.Warnings.List) != tc.warnings || len(h.Names) != len(tc.headers) {
				t.Errorf("warnings %v, names %v", h.Warnings.List, h.Names)
			}
		})
	}
}
