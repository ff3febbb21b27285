package webhook

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
)

// AllTenants as a destination's tenant: it receives every tenant's calls
// (the platform team's destination).
const AllTenants = "*"

// Destination is one receiver of finished calls, as the `webhooks` list of
// the configuration gives it. The signing secret is never in the
// configuration itself: it is read from a file (a mounted Kubernetes
// Secret) or an environment variable (secretKeyRef).
type Destination struct {
	// Name labels the destination in metrics and logs (the URL may hold a
	// token, so it is never logged).
	Name string `json:"name"`
	// URL receives a POST per call; http:// or https://.
	URL string `json:"url"`
	// Tenant is the one tenant whose calls go here, or "*" for all.
	Tenant     string `json:"tenant"`
	SecretFile string `json:"secret-file,omitempty"`
	SecretEnv  string `json:"secret-env,omitempty"`
	// SampleRate is the percentage of calls sent, 0 to 100 (default 100).
	SampleRate *float64 `json:"sample-rate,omitempty"`
	// PropertyFilters: only calls whose Helicone-Property-<key> equals
	// value, for every entry, are sent. Keys match whatever their case.
	PropertyFilters []PropertyFilter `json:"property-filters,omitempty"`
	// IncludeData adds model, provider and metadata (cost, tokens,
	// latency) to the payload, as Helicone's includeData (default true).
	IncludeData *bool `json:"include-data,omitempty"`
	// IncludeBodies sends the request and response bodies (default true);
	// false sends them as "".
	IncludeBodies *bool `json:"include-bodies,omitempty"`
}

// PropertyFilter is one of Helicone's propertyFilters: {key, value}.
type PropertyFilter struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// Validate checks a list of destinations and reports every problem, each
// naming its destination. Secrets are checked when they are loaded (New).
func Validate(ds []Destination) error {
	var errs []error
	names := map[string]bool{}
	for i, d := range ds {
		where := fmt.Sprintf("webhooks[%d]", i)
		if d.Name != "" {
			where += " (" + d.Name + ")"
		}
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf(where+": "+format, args...))
		}
		switch {
		case !validName.MatchString(d.Name):
			bad("name: want lowercase letters, digits, '.', '_' or '-', got %q", d.Name)
		case names[d.Name]:
			bad("name: used by another destination")
		}
		names[d.Name] = true
		if err := checkURL(d.URL); err != nil {
			bad("url: %v", err)
		}
		if strings.TrimSpace(d.Tenant) == "" {
			bad(`tenant: want a tenant name, or "*" for every tenant's calls`)
		}
		if (d.SecretFile == "") == (d.SecretEnv == "") {
			bad("want one of secret-file and secret-env (the signing secret is never written in the configuration)")
		}
		if r := d.SampleRate; r != nil && (*r < 0 || *r > 100) {
			bad("sample-rate: want a percentage from 0 to 100, got %v", *r)
		}
		for j, f := range d.PropertyFilters {
			if f.Key == "" {
				bad("property-filters[%d]: key is empty", j)
			}
		}
	}
	return errors.Join(errs...)
}

// checkURL refuses what is not an http(s) URL with a host. Its error never
// quotes the URL: its path or query may hold a token.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("want an http:// or https:// URL, got scheme %q", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("the URL has no host")
	}
	return nil
}

// secret reads the destination's signing secret. Surrounding white space
// is dropped (a file written by hand or by kubectl ends in a newline).
// Errors name where the secret was looked for, never what it holds.
func (d *Destination) secret(getenv func(string) string) ([]byte, error) {
	var s string
	if d.SecretFile != "" {
		b, err := os.ReadFile(d.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("webhook %s: secret-file: %w", d.Name, err)
		}
		s = string(b)
	} else {
		s = getenv(d.SecretEnv)
	}
	s = strings.TrimSpace(s)
	if s == "" {
		from := "secret-file " + d.SecretFile
		if d.SecretFile == "" {
			from = "secret-env " + d.SecretEnv
		}
		return nil, fmt.Errorf("webhook %s: %s: the signing secret is empty", d.Name, from)
	}
	return []byte(s), nil
}

func (d *Destination) sampleRate() float64 {
	if d.SampleRate == nil {
		return 100
	}
	return *d.SampleRate
}

func orTrue(b *bool) bool { return b == nil || *b }
