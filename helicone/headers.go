// Package helicone reads Helicone's request headers (Helicone-*): the
// identity and metadata a call is logged with. The processor reads them from
// Envoy's headers, the API from an out-of-band log call; both use this.
package helicone

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/record"
)

// Header names, lowercase (Envoy sends keys lowercased).
const (
	Prefix         = "helicone-"
	PropertyPrefix = "helicone-property-"
	Auth           = "helicone-auth"
	UserID         = "helicone-user-id"
	SessionID      = "helicone-session-id"
	SessionPath    = "helicone-session-path"
	SessionName    = "helicone-session-name"
	RequestName    = "helicone-request-name"
	RequestID      = "helicone-request-id"
	OmitRequest    = "helicone-omit-request"
	OmitResponse   = "helicone-omit-response"
	TargetURL      = "helicone-target-url"
	ResponseID     = "helicone-id" // on every response: the request id

	RetryPrefix     = "helicone-retry-" // -enabled, -num, -factor, -min-timeout, -max-timeout
	Fallback        = "helicone-fallback"
	Fallbacks       = "helicone-fallbacks"
	FallbackIndex   = "helicone-fallback-index" // on the response: which entry answered
	PromptID        = "helicone-prompt-id"
	PromptVersion   = "helicone-prompt-version"
	PromptVariables = "helicone-prompt-variables"

	MaxPropertyValueLength = 4096
)

// Headers is what the Helicone-* headers of one call say.
type Headers struct {
	RequestID       string // a UUID, normalized; "" when not sent
	UserID          string
	SessionID       string
	SessionPath     string
	SessionName     string
	RequestName     string
	Properties      []record.Property // keys lowercased; see SortedProperties
	OmitRequest     bool
	OmitResponse    bool
	Auth            string
	TargetURL       string
	Retry           bool   // a Helicone-Retry-* header was sent (policies.ParseRetryPolicy reads them)
	Fallback        string // Helicone-Fallback, raw (policies.ParseFallbacks)
	Fallbacks       string // Helicone-Fallbacks, raw
	PromptID        string
	PromptVersion   int // 0: the latest
	PromptVariables string
	Names           []string // every helicone-* header seen, to strip before the provider
}

// Add reads one header given by its lowercase name; other headers are
// ignored. It returns an error naming the header for a value that cannot be
// right. Unknown Helicone-* headers are accepted (and listed in Names) so
// that features not built yet do not break clients that send them.
func (h *Headers) Add(key, value string) error {
	if !strings.HasPrefix(key, Prefix) {
		return nil
	}
	h.Names = append(h.Names, key)
	switch key {
	case Auth:
		h.Auth = value
	case UserID:
		h.UserID = value
	case SessionID:
		h.SessionID = value
	case SessionPath:
		h.SessionPath = value
	case SessionName:
		h.SessionName = value
	case RequestName:
		h.RequestName = value
	case RequestID:
		id, err := uuid.Parse(strings.TrimSpace(value))
		if err != nil {
			return fmt.Errorf("Helicone-Request-Id must be a UUID, got %q", Truncate(value, 64))
		}
		h.RequestID = id.String()
	case OmitRequest, OmitResponse:
		b, ok := ParseBool(value)
		if !ok {
			return fmt.Errorf("%s must be true or false, got %q", Canonical(key), Truncate(value, 64))
		}
		if key == OmitRequest {
			h.OmitRequest = b
		} else {
			h.OmitResponse = b
		}
	case TargetURL:
		h.TargetURL = value
	case Fallback:
		h.Fallback = value
	case Fallbacks:
		h.Fallbacks = value
	case PromptID:
		h.PromptID = strings.TrimSpace(value)
	case PromptVersion:
		v := strings.TrimSpace(value)
		if v == "" || strings.EqualFold(v, "latest") {
			h.PromptVersion = 0
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("Helicone-Prompt-Version must be a version number (1, 2, …) or latest, got %q", Truncate(value, 64))
		}
		h.PromptVersion = n
	case PromptVariables:
		h.PromptVariables = value
	default:
		if strings.HasPrefix(key, RetryPrefix) {
			h.Retry = true
			return nil
		}
		if name, ok := strings.CutPrefix(key, PropertyPrefix); ok && name != "" {
			if len(value) > MaxPropertyValueLength {
				return fmt.Errorf("Helicone-Property-%s is longer than %d bytes", name, MaxPropertyValueLength)
			}
			h.Properties = append(h.Properties, record.Property{Key: name, Value: value})
		}
	}
	return nil
}

// SortedProperties returns the properties ordered by key, the last value of
// a repeated key winning, so records are deterministic.
func (h *Headers) SortedProperties() []record.Property {
	return record.SortProperties(h.Properties)
}

// ParseBool reads a switch header: true/1, false/0/empty.
func ParseBool(v string) (value, ok bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "1":
		return true, true
	case "false", "0", "":
		return false, true
	}
	return false, false
}

// Canonical turns "helicone-omit-request" into "Helicone-Omit-Request" for
// messages, so they name the header the way the documentation does.
func Canonical(key string) string {
	parts := strings.Split(key, "-")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "-")
}

// Truncate shortens a value quoted in an error message.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
