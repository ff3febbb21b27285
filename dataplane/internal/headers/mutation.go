package headers

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// ErrMutation marks a header mutation Envoy rejects as a whole. Envoy answers
// those with a 500 local reply whatever failure_mode_allow says, because the
// processor is up but sent something broken.
var ErrMutation = errors.New("invalid header mutation")

// Rules is the filter's mutation_rules. Only allow_envoy is modelled;
// the zero value is Envoy's default (an empty mutation_rules).
type Rules struct {
	AllowEnvoy bool // x-envoy-* headers may be set and removed
}

// ApplyMutation applies a HeaderMutation the way Envoy's ext_proc filter
// does (MutationUtils::applyHeaderMutations) with the given mutation_rules:
//
//   - removals first, then sets, each in order;
//   - a name that is not a valid token, or a value with NUL/CR/LF, rejects the
//     mutation (error);
//   - a HeaderValue with both value and raw_value set rejects the mutation;
//   - only raw_value is read (send_header_raw_value is on by default), so a
//     HeaderValue that only sets value sets the header to "";
//   - only the deprecated append BoolValue counts, defaulting to false
//     (overwrite); append_action is not honoured by Envoy's ext_proc filter;
//   - the default rules silently ignore: removing ':' headers, host and
//     x-envoy-*; setting host, :authority, :method, :scheme and x-envoy-*;
//     appending to an existing ':' header; a :status that is not >= 200.
//     :path and :status may be set. With CONTINUE_AND_REPLACE, :method may be
//     set too. allow_envoy lifts the x-envoy-* restriction, both ways.
func ApplyMutation(h *List, m *extprocv3.HeaderMutation, replacing bool, rules Rules, log *slog.Logger) error {
	for _, name := range m.GetRemoveHeaders() {
		if !validHeaderName(name) {
			return fmt.Errorf("%w: invalid name %q in remove_headers", ErrMutation, name)
		}
		lk := strings.ToLower(name)
		if !removable(lk, rules) {
			log.Debug("ext_proc: header removal ignored by mutation rules", "header", lk)
			continue
		}
		h.Del(lk)
	}
	for _, opt := range m.GetSetHeaders() {
		hv := opt.GetHeader()
		if hv == nil {
			continue
		}
		if hv.GetValue() != "" && len(hv.GetRawValue()) > 0 {
			return fmt.Errorf("%w: header %q sets both value and raw_value", ErrMutation, hv.GetKey())
		}
		if hv.GetValue() != "" {
			log.Warn("ext_proc: HeaderValue.value is ignored by Envoy (it reads raw_value); the header is set to an empty value",
				"header", hv.GetKey())
		}
		value := string(hv.GetRawValue())
		if !validHeaderName(hv.GetKey()) || !validHeaderValue(value) {
			return fmt.Errorf("%w: invalid character in set_headers entry %q", ErrMutation, hv.GetKey())
		}
		//lint:ignore SA1019 Envoy's ext_proc filter reads only the deprecated field
		if opt.GetAppendAction() != 0 && opt.GetAppend() == nil {
			log.Warn("ext_proc: append_action is ignored by Envoy's ext_proc filter; use append",
				"header", hv.GetKey(), "append_action", opt.GetAppendAction().String())
		}
		lk := strings.ToLower(hv.GetKey())
		//lint:ignore SA1019 Envoy's ext_proc filter reads only the deprecated field
		appendMode := opt.GetAppend().GetValue()
		appending := appendMode && h.Has(lk)
		if !settable(lk, value, setContext{appending: appending, replacing: replacing}, rules) {
			log.Debug("ext_proc: header change ignored by mutation rules", "header", lk)
			continue
		}
		if appendMode {
			h.Add(lk, value)
		} else {
			h.Set(lk, value)
		}
	}
	return nil
}

// removable is the REMOVE branch of Envoy's mutation rule Checker.
func removable(lk string, rules Rules) bool {
	return !IsPseudo(lk) && lk != "host" && (rules.AllowEnvoy || !isEnvoyHeader(lk))
}

// setContext is what Envoy's Checker knows about one set_headers entry
// besides the header itself.
type setContext struct {
	appending bool // the entry appends to a header already present
	replacing bool // the reply's status is CONTINUE_AND_REPLACE
}

// settable is the SET/APPEND branch of Envoy's mutation rule Checker
// (allow_all_routing and disallow_system false).
func settable(lk, value string, sc setContext, rules Rules) bool {
	if sc.replacing && lk == ":method" {
		// Envoy lets CONTINUE_AND_REPLACE turn e.g. a GET into a POST.
		return true
	}
	switch lk {
	case "host", ":authority", ":method", ":scheme":
		return false
	}
	if IsPseudo(lk) && sc.appending {
		return false
	}
	if isEnvoyHeader(lk) && !rules.AllowEnvoy {
		return false
	}
	if lk == ":status" {
		code, err := strconv.Atoi(value)
		return err == nil && code >= 200
	}
	return true
}

// isEnvoyHeader matches Envoy's internal headers (the router's default
// header_prefix).
func isEnvoyHeader(lk string) bool { return strings.HasPrefix(lk, "x-envoy") }
