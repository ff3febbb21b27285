package app

import (
	"strings"
	"testing"
)

// http:// target origins are accepted (envoy/ has a plain-HTTP forward
// proxy for them); entries that could never match an origin are refused
// with the setting's name.
func TestAllowedTargetOrigins(t *testing.T) {
	good := "https://api.together.xyz,http://vllm.models.svc:8000,http://127.0.0.1:9000/,*"
	if _, _, err := loadConfig("serve", []string{"--allowed-target-origins", good}, env(nil), false); err != nil {
		t.Fatalf("%s: %v", good, err)
	}
	for _, bad := range []string{"api.together.xyz", "https://api.together.xyz/v1", "ftp://x", "https://u:p@x", "https://x?q=1"} {
		_, _, err := loadConfig("serve", []string{"--allowed-target-origins", bad}, env(nil), false)
		if err == nil || !strings.Contains(err.Error(), "allowed-target-origins") {
			t.Errorf("%s: error %v, want one naming allowed-target-origins", bad, err)
		}
	}
}
