package policies

import (
	"errors"
	"strings"
	"testing"
)

func TestAuthTenant(t *testing.T) {
	open, err := NewAuth(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	keyed, err := NewAuth([]APIKey{{SHA256: HashKey("sk-acme"), Tenant: "acme"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	strict, err := NewAuth([]APIKey{{SHA256: strings.ToUpper(HashKey("sk-acme")), Tenant: "acme"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		auth    *Auth
		header  string
		want    string
		wantErr bool
	}{
		{"open, no header", open, "", DefaultTenant, false},
		{"open, key hashed", open, "Bearer sk-x", "key-" + HashKey("sk-x")[:16], false},
		{"open, bare key same tenant", open, "sk-x", "key-" + HashKey("sk-x")[:16], false},
		{"keyed, known", keyed, "Bearer sk-acme", "acme", false},
		{"keyed, lowercase bearer", keyed, "bearer sk-acme", "acme", false},
		{"keyed, unknown", keyed, "Bearer sk-other", "", true},
		{"keyed, missing allowed", keyed, "", DefaultTenant, false},
		{"strict, missing", strict, "", "", true},
		{"strict, known upper-case hash in config", strict, "Bearer sk-acme", "acme", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.auth.Tenant(tt.header)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("Tenant(%q) = %q, %v; want %q, err=%v", tt.header, got, err, tt.want, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, ErrUnauthorized) {
					t.Fatalf("error %v does not wrap ErrUnauthorized", err)
				}
				if strings.Contains(err.Error(), "sk-") {
					t.Fatalf("error leaks the key: %v", err)
				}
			}
		})
	}
}

func TestNewAuthJoinsConfigErrors(t *testing.T) {
	_, err := NewAuth([]APIKey{{SHA256: "xyz", Tenant: "a"}, {SHA256: HashKey("k"), Tenant: ""}}, false)
	if err == nil || !strings.Contains(err.Error(), "auth.keys[0].sha256") || !strings.Contains(err.Error(), "auth.keys[1].tenant") {
		t.Fatalf("got %v", err)
	}
}
