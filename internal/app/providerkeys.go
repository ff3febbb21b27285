package app

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/tollgate-dev/tollgate/provider"
)

// providerKeys reads --provider-key, "provider=env:VAR" or
// "provider=file:/path" entries, into the gateway's own key per provider:
// the key a fallback entry translated to that provider is sent with
// (processor Options.ProviderKeys), never the client's. The key itself is
// never a flag value, so it stays out of process lists and config dumps.
// With read false only the entries' form is checked (settings validation).
func providerKeys(entries []string, read bool) (map[string]string, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(entries))
	var errs []error
	for _, e := range entries {
		name, src, ok := strings.Cut(e, "=")
		name, src = strings.TrimSpace(name), strings.TrimSpace(src)
		kind, ref, refOK := strings.Cut(src, ":")
		switch {
		case !ok || !refOK || ref == "" || (kind != "env" && kind != "file"):
			errs = append(errs, fmt.Errorf("want provider=env:VAR or provider=file:/path, got %q", e))
			continue
		case name != provider.OpenAI && name != provider.Anthropic:
			errs = append(errs, fmt.Errorf("%q: only %s and %s keys are used (fallback translation)", name, provider.OpenAI, provider.Anthropic))
			continue
		case out[name] != "":
			errs = append(errs, fmt.Errorf("provider %q is listed twice", name))
			continue
		}
		out[name] = "set"
		if !read {
			continue
		}
		var key string
		if kind == "env" {
			key = os.Getenv(ref)
		} else {
			b, err := os.ReadFile(ref)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s key: %w", name, err))
				continue
			}
			key = string(b)
		}
		if key = strings.TrimSpace(key); key == "" {
			errs = append(errs, fmt.Errorf("%s key: %s:%s is empty", name, kind, ref))
			continue
		}
		out[name] = key
	}
	return out, errors.Join(errs...)
}
