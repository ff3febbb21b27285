// Package helicone is Tollgate's Helicone vocabulary: the name of every
// Helicone-* request and response header, the parser of a call's request
// headers (Headers; the processor feeds it Envoy's headers, the API an
// out-of-band log call's), and the OpenAI-style error body of the replies
// Tollgate makes itself (AppendErrorBody).
package helicone

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/record"
)

// Helicone's header names, lowercase: Envoy sends keys lowercased, and
// http.Header.Get canonicalizes what it is given. Every Helicone-* name the
// code uses is declared here (DESIGN §4 says what each one does).
const (
	Prefix = "helicone-" // every Helicone request header; none reaches the provider
)

// Identity, metadata and logging switches.
const (
	Auth           = "helicone-auth"
	UserID         = "helicone-user-id"
	SessionID      = "helicone-session-id"
	SessionPath    = "helicone-session-path"
	SessionName    = "helicone-session-name"
	RequestName    = "helicone-request-name"
	RequestID      = "helicone-request-id"
	PropertyPrefix = "helicone-property-" // + the property name
	OmitRequest    = "helicone-omit-request"
	OmitResponse   = "helicone-omit-response"
	TargetURL      = "helicone-target-url"
	OpenAIAPIBase  = "helicone-openai-api-base" // Azure OpenAI's origin; wins over TargetURL
	ModelOverride  = "helicone-model-override"  // the model the call is priced and listed as
	StreamUsage    = "helicone-stream-usage"    // true: the client gets a stream's usage chunk
	// TokenLimitExceptionHandler: truncate, middle-out or fallback when the
	// prompt is over the model's context window (policies/tokenlimit).
	TokenLimitExceptionHandler = "helicone-token-limit-exception-handler"

	// MaxPropertyValueLength bounds a logged property value. Helicone keeps
	// a value whole, but it sits behind Cloudflare, which refuses a request
	// header over 16 KiB: no value an application sends to Helicone is
	// longer, so none is cut here either.
	MaxPropertyValueLength = 16 << 10

	// ReservedPropertyPrefix starts the properties Tollgate writes itself
	// (the screen's and the token-limit handler's outcomes); a
	// Helicone-Property-Tollgate-… header is dropped with a warning.
	ReservedPropertyPrefix = "tollgate-"

	maxModelOverride = 256
)

// Cache (policies/gate).
const (
	CacheEnabled       = "helicone-cache-enabled"
	CacheSave          = "helicone-cache-save"
	CacheRead          = "helicone-cache-read"
	CacheSeed          = "helicone-cache-seed"
	CacheBucketMaxSize = "helicone-cache-bucket-max-size"
	CacheIgnoreKeys    = "helicone-cache-ignore-keys"
)

// Rate limits (policies/ratelimit): the request's policy, and what every
// response under it reports.
const (
	RateLimitPolicy    = "helicone-ratelimit-policy" // also on the response, normalized
	RateLimitLimit     = "helicone-ratelimit-limit"
	RateLimitRemaining = "helicone-ratelimit-remaining"
	RateLimitReset     = "helicone-ratelimit-reset"
)

// Retries and fallbacks (policies/attempts).
const (
	RetryEnabled    = "helicone-retry-enabled"
	RetryNum        = "helicone-retry-num"
	RetryFactor     = "helicone-retry-factor"
	RetryMinTimeout = "helicone-retry-min-timeout"
	RetryMaxTimeout = "helicone-retry-max-timeout"
	Fallback        = "helicone-fallback"
	Fallbacks       = "helicone-fallbacks"
)

// Prompts (policies/prompt).
const (
	PromptID        = "helicone-prompt-id"
	PromptVersion   = "helicone-prompt-version"
	PromptVariables = "helicone-prompt-variables"
)

// Moderation and LLM security (policies/screen). PromptSecurityEnabled is
// the older name Helicone's worker still reads when LLMSecurityEnabled is
// absent (worker/src/lib/models/HeliconeHeaders.ts).
const (
	ModerationsEnabled    = "helicone-moderations-enabled"
	LLMSecurityEnabled    = "helicone-llm-security-enabled"
	LLMSecurityAdvanced   = "helicone-llm-security-advanced"
	PromptSecurityEnabled = "helicone-prompt-security-enabled"
)

// Response headers Tollgate sets.
const (
	ResponseID     = "helicone-id"               // on every response: the request id
	CacheStatus    = "helicone-cache"            // HIT or MISS, when the cache is on
	CacheBucketIdx = "helicone-cache-bucket-idx" // on a hit: the slot served
	CacheLatency   = "helicone-cache-latency"    // on a hit: ms of the original call
	FallbackIndex  = "helicone-fallback-index"   // which entry answered; 0 = the request as sent
	// XHeliconeError is on a reply Tollgate makes itself: its error code
	// (rate_limited, egress_denied, …).
	XHeliconeError = "x-helicone-error"
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
	ModelOverride   string // Helicone-Model-Override: prices and lists the call; the provider never sees it
	OpenAIAPIBase   string
	StreamUsage     bool   // Helicone-Stream-Usage: true
	TokenLimit      string // Helicone-Token-Limit-Exception-Handler, raw (tokenlimit.ParseMode)
	Fallback        string // Helicone-Fallback, raw (attempts.ParseFallbacks)
	Fallbacks       string // Helicone-Fallbacks, raw
	PromptID        string
	PromptVersion   int // 0: the latest
	PromptVariables string
	Names           []string // every helicone-* header seen, to strip before the provider

	// Pre-call checks (policies/screen): Helicone-Moderations-Enabled,
	// Helicone-LLM-Security-Enabled (or its older name) and
	// Helicone-LLM-Security-Advanced, each true only for "true" in any case
	// (ReadSwitch).
	Moderations, LLMSecurity, LLMSecurityAdvanced bool

	// Raw values a policy parses itself, so that its 400 comes after auth
	// and the egress policy have had their say. The first of repeated
	// headers wins, as it always has for these.
	Cache           CacheHeaders // policies/gate
	RateLimitPolicy string       // policies/gate, ratelimit.Parse
	Retry           RetryHeaders // attempts.ParseRetryPolicy

	// Warnings are the values tolerated the way Helicone tolerates them
	// instead of a 400; the processor reports them in Helicone-Warning.
	Warnings Warnings

	seen uint16 // firstOnly bits: which of the first-wins headers were sent; bit 12: Helicone-LLM-Security-Enabled
}

// CacheHeaders are the Helicone-Cache-* request headers, raw.
type CacheHeaders struct {
	Enabled, Save, Read, Seed, BucketMaxSize, IgnoreKeys string
}

// RetryHeaders are the Helicone-Retry-* request headers, raw.
type RetryHeaders struct {
	Enabled, Num, Factor, MinTimeout, MaxTimeout string
}

// firstOnly keeps the first value of a header: bit is its flag in seen.
func (h *Headers) firstOnly(bit uint16, dst *string, value string) {
	if h.seen&bit == 0 {
		h.seen |= bit
		*dst = value
	}
}

// Add reads one header given by its lowercase name; other headers are
// ignored. A value Helicone tolerates is tolerated the same way and noted
// in h.Warnings; an error, naming the header, is left for a value that
// cannot be right. Unknown Helicone-* headers are accepted (and listed in
// Names) so that features not built yet do not break clients that send
// them.
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
		// Helicone replaces an id that is not a UUID with a new one, without
		// a word (worker/src/lib/models/HeliconeHeaders.ts, getValidUUID):
		// so does Tollgate, and says so in Helicone-Warning.
		v := strings.TrimSpace(value)
		if v == "" {
			return nil
		}
		// Any UUID is kept (Helicone takes only versions 1–5), but not the
		// nil UUID: Helicone replaces it too, and a client sending it as a
		// placeholder would file every call under one id.
		id, err := uuid.Parse(v)
		if err != nil || id == uuid.Nil {
			h.Warnings.Add(RequestID, fmt.Sprintf("%q is not a UUID; the call has a new id (Helicone-Id)", Truncate(value, 64)))
			return nil
		}
		h.RequestID = id.String()
	case OmitRequest, OmitResponse:
		// Helicone omits only on "true" and logs on anything else
		// (HeliconeHeaders.ts, omitHeaders); see ReadSwitch.
		s, ok := ReadSwitch(value)
		if !ok {
			h.Warnings.Add(key, fmt.Sprintf("%q is not true or false; the body is logged", Truncate(value, 64)))
		}
		b := s == SwitchOn
		if key == OmitRequest {
			h.OmitRequest = b
		} else {
			h.OmitResponse = b
		}
	case ModelOverride:
		// A model name; a longer value is cut, as it is stored (and
		// priced) as a name on every row.
		h.ModelOverride = strings.TrimSpace(value)
		if len(h.ModelOverride) > maxModelOverride {
			h.ModelOverride = cut(h.ModelOverride, maxModelOverride)
			h.Warnings.Add(key, fmt.Sprintf("is longer than %d bytes; the first %d are used", maxModelOverride, len(h.ModelOverride)))
		}
	case TargetURL:
		h.TargetURL = value
	case OpenAIAPIBase:
		h.OpenAIAPIBase = value
	case StreamUsage:
		// Not a 400: Helicone reads any value but "true" as false
		// (HeliconeHeaders.ts, getHeliconeFeatureFlags).
		s, ok := ReadSwitch(value)
		if !ok {
			h.Warnings.Add(key, fmt.Sprintf("%q is not true or false; read as false", Truncate(value, 64)))
		}
		h.StreamUsage = s == SwitchOn
	case TokenLimitExceptionHandler:
		h.TokenLimit = value
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
	case ModerationsEnabled, LLMSecurityEnabled, PromptSecurityEnabled, LLMSecurityAdvanced:
		h.addScreenSwitch(key, value)
	case CacheEnabled:
		h.firstOnly(1<<0, &h.Cache.Enabled, value)
	case CacheSave:
		h.firstOnly(1<<1, &h.Cache.Save, value)
	case CacheRead:
		h.firstOnly(1<<2, &h.Cache.Read, value)
	case CacheSeed:
		h.firstOnly(1<<3, &h.Cache.Seed, value)
	case CacheBucketMaxSize:
		h.firstOnly(1<<4, &h.Cache.BucketMaxSize, value)
	case CacheIgnoreKeys:
		h.firstOnly(1<<5, &h.Cache.IgnoreKeys, value)
	case RateLimitPolicy:
		h.firstOnly(1<<6, &h.RateLimitPolicy, value)
	case RetryEnabled:
		h.firstOnly(1<<7, &h.Retry.Enabled, value)
	case RetryNum:
		h.firstOnly(1<<8, &h.Retry.Num, value)
	case RetryFactor:
		h.firstOnly(1<<9, &h.Retry.Factor, value)
	case RetryMinTimeout:
		h.firstOnly(1<<10, &h.Retry.MinTimeout, value)
	case RetryMaxTimeout:
		h.firstOnly(1<<11, &h.Retry.MaxTimeout, value)
	default:
		if name, ok := strings.CutPrefix(key, PropertyPrefix); ok && name != "" {
			if strings.HasPrefix(name, ReservedPropertyPrefix) {
				// Tollgate's own outcomes (tollgate-moderation,
				// tollgate-token-limit, …): a client must not be able to
				// forge them for an audit query to count.
				h.Warnings.Add(key, "names a property reserved for Tollgate's own outcomes (tollgate-*); it is not logged")
				return nil
			}
			if len(value) > MaxPropertyValueLength {
				value = cut(value, MaxPropertyValueLength)
				h.Warnings.Add(key, fmt.Sprintf("is longer than %d bytes; the first %d are logged", MaxPropertyValueLength, len(value)))
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

// Switch is what a switch header (Helicone-Cache-Enabled, -Retry-Enabled,
// -Omit-Request, -Stream-Usage, -Moderations-Enabled, …) says.
type Switch int8

const (
	SwitchUnset Switch = iota // not sent, empty, or not a switch value
	SwitchOn
	SwitchOff
)

// ReadSwitch is the one reading of every switch header. Helicone turns each
// on only for the exact value "true" and reads anything else as off
// (worker/src/lib/models/HeliconeHeaders.ts compares every one with
// "true"); Tollgate takes "true" in any case as well (Python's str(True)
// sends "True"), "false" in any case as off, and an empty value as not
// sent. Any other value ("1", "yes") is not sent and ok is false: the caller
// says in Helicone-Warning what it did instead.
func ReadSwitch(v string) (s Switch, ok bool) {
	switch v = strings.TrimSpace(v); {
	case v == "":
		return SwitchUnset, true
	case strings.EqualFold(v, "true"):
		return SwitchOn, true
	case strings.EqualFold(v, "false"):
		return SwitchOff, true
	}
	return SwitchUnset, false
}

// Canonical turns "helicone-omit-request" into "Helicone-Omit-Request" for
// messages, so they name the header the way the documentation does
// (Helicone-RateLimit-Policy, Helicone-Target-URL).
func Canonical(key string) string {
	parts := strings.Split(key, "-")
	for i, p := range parts {
		switch p {
		case "":
		case "ratelimit":
			parts[i] = "RateLimit"
		case "openai":
			parts[i] = "OpenAI"
		case "url":
			parts[i] = "URL"
		default:
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "-")
}

// Truncate shortens a value quoted in a message to at most n bytes and an
// ellipsis, never splitting a UTF-8 sequence.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return cut(s, n) + "…"
}

// cut returns the longest prefix of s of at most n bytes that does not end
// inside a UTF-8 sequence.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && i > n-utf8.UTFMax && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// addScreenSwitch reads the switches of the pre-call checks. Helicone turns
// moderation on only for "true" and reads its LLM-security switches
// without a 400 whatever they say (worker/src/lib/models/HeliconeHeaders.ts);
// Tollgate reads them as every switch (ReadSwitch) and turns the check off,
// with a warning, for a value that is neither true nor false. The older
// Helicone-Prompt-Security-Enabled counts only without the newer name, as
// in Helicone (the first of the two it finds wins).
func (h *Headers) addScreenSwitch(key, value string) {
	s, ok := ReadSwitch(value)
	on := s == SwitchOn
	if !ok {
		h.Warnings.Add(key, fmt.Sprintf("%q is not true or false; the check is off", Truncate(value, 64)))
	}
	switch key {
	case ModerationsEnabled:
		h.Moderations = on
	case LLMSecurityEnabled:
		h.LLMSecurity = on
		h.seen |= 1 << 12
	case PromptSecurityEnabled:
		if h.seen&(1<<12) == 0 {
			h.LLMSecurity = on
		}
	case LLMSecurityAdvanced:
		h.LLMSecurityAdvanced = on
	}
}
