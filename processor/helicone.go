package processor

import (
	"net/url"
	"strings"

	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/record"
)

// Helicone header names (lowercase: Envoy sends header keys lowercased).
const (
	heliconePrefix         = "helicone-"
	propertyPrefix         = "helicone-property-"
	hdrAuth                = "helicone-auth"
	hdrUserID              = "helicone-user-id"
	hdrSessionID           = "helicone-session-id"
	hdrSessionPath         = "helicone-session-path"
	hdrSessionName         = "helicone-session-name"
	hdrRequestName         = "helicone-request-name"
	hdrRequestID           = "helicone-request-id"
	hdrOmitRequest         = "helicone-omit-request"
	hdrOmitResponse        = "helicone-omit-response"
	hdrTargetURL           = "helicone-target-url"
	respHdrID              = "helicone-id"
	upstreamOriginHeader   = "x-tollgate-upstream"      // origin for the local data plane
	upstreamHostHeader     = "x-tollgate-upstream-host" // host[:port] for Envoy's dynamic forward proxy route
	maxPropertyValueLength = 4096
)

// heliconeHeaders is what the Helicone-* request headers say about a call.
type heliconeHeaders struct {
	requestID    string
	userID       string
	sessionID    string
	sessionPath  string
	sessionName  string
	requestName  string
	properties   []record.Property
	omitRequest  bool
	omitResponse bool
	auth         string
	targetURL    string
	names        []string // every helicone-* header seen, to strip before the provider
}

// add records one header. It returns a client error for a value that cannot
// be right; unknown Helicone-* headers are accepted (and stripped) so that
// features not built yet do not break clients that send them.
func (h *heliconeHeaders) add(key, value string) *clientError {
	h.names = append(h.names, key)
	switch key {
	case hdrAuth:
		h.auth = value
	case hdrUserID:
		h.userID = value
	case hdrSessionID:
		h.sessionID = value
	case hdrSessionPath:
		h.sessionPath = value
	case hdrSessionName:
		h.sessionName = value
	case hdrRequestName:
		h.requestName = value
	case hdrRequestID:
		id, err := uuid.Parse(strings.TrimSpace(value))
		if err != nil {
			return badRequest("invalid_header", "Helicone-Request-Id must be a UUID, got %q", truncate(value, 64))
		}
		h.requestID = id.String()
	case hdrOmitRequest, hdrOmitResponse:
		b, ok := parseBool(value)
		if !ok {
			return badRequest("invalid_header", "%s must be true or false, got %q", canonical(key), truncate(value, 64))
		}
		if key == hdrOmitRequest {
			h.omitRequest = b
		} else {
			h.omitResponse = b
		}
	case hdrTargetURL:
		h.targetURL = value
	default:
		if name, ok := strings.CutPrefix(key, propertyPrefix); ok && name != "" {
			if len(value) > maxPropertyValueLength {
				return badRequest("invalid_header", "Helicone-Property-%s is longer than %d bytes", name, maxPropertyValueLength)
			}
			h.properties = append(h.properties, record.Property{Key: strings.ToLower(name), Value: value})
		}
	}
	return nil
}

// sortedProperties returns the properties ordered by key, the last value of
// a repeated key winning, so records are deterministic.
func (h *heliconeHeaders) sortedProperties() []record.Property {
	return record.SortProperties(h.properties)
}

// targetOrigin validates Helicone-Target-URL against the allowed origins and
// returns its origin (scheme://host[:port]) and host; path and query of the
// header are ignored, they come from the request.
func targetOrigin(raw string, allowed map[string]bool) (origin, host string, cerr *clientError) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", badRequest("invalid_header", "Helicone-Target-URL must be an absolute http(s) URL, got %q", truncate(raw, 200))
	}
	origin = strings.ToLower(u.Scheme + "://" + u.Host)
	if !allowed[origin] && !allowed["*"] {
		return "", "", &clientError{status: 403, code: "target_not_allowed",
			message: "Helicone-Target-URL origin " + origin + " is not allowed by this gateway's configuration (allowed-target-origins)"}
	}
	return origin, strings.ToLower(u.Host), nil
}

func parseBool(v string) (value, ok bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "1":
		return true, true
	case "false", "0", "":
		return false, true
	}
	return false, false
}

// canonical turns "helicone-omit-request" into "Helicone-Omit-Request" for
// messages, so they name the header the way the documentation does.
func canonical(key string) string {
	parts := strings.Split(key, "-")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "-")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
