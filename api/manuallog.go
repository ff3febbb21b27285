package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/provider"
	"github.com/tollgate-dev/tollgate/record"
)

// manualLog handles Helicone's manual-logger routes; route is the provider
// the path names ("custom": the body's provider field, else openai).
func (s *server) manualLog(route string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, ok := readBody(w, r)
		if !ok {
			return
		}
		ml, err := parseManualLog(body)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_body", err.Error())
			return
		}
		hh, err := manualLogHeaders(ml.ProviderRequest.Meta, r.Header)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_header", err.Error())
			return
		}
		// The first Helicone-Auth decides, as it always has here; the
		// parsed headers keep the last value of a repeated header.
		tenant, err := s.loggerTenant(r, r.Header.Get(helicone.Auth))
		if err != nil {
			writeError(w, http.StatusUnauthorized, "unauthorized", err.Error())
			return
		}
		rec := buildManualRecord(ml, route, hh, s.o.Prices, s.o.Now())
		rec.Tenant = tenant
		if !s.write(w, rec) {
			return
		}
		// Helicone answers a log with the call's id in helicone-id
		// (worker/src/lib/managers/AsyncLogManager.ts).
		w.Header().Set(helicone.ResponseID, rec.RequestID)
		writeJSON(w, http.StatusOK, map[string]string{"id": rec.RequestID})
	}
}

// loggerTenant: Helicone-Auth (heliconeAuth) when sent; else the
// Helicone key in Authorization (what Helicone's helpers send) unless that
// is the API key.
func (s *server) loggerTenant(r *http.Request, heliconeAuth string) (string, error) {
	if heliconeAuth != "" {
		return s.o.Auth.Tenant(heliconeAuth)
	}
	if s.o.APIKey != "" && s.bearerIsAPIKey(r) {
		return s.o.Auth.Tenant("")
	}
	return s.o.Auth.Tenant(r.Header.Get("Authorization"))
}

// manualLogBody is Helicone's manual-logger payload (the helpers'
// HeliconeManualLogger.sendLog; same shape as the async logger).
type manualLogBody struct {
	ProviderRequest struct {
		URL  string          `json:"url"`
		JSON json.RawMessage `json:"json"`
		Meta json.RawMessage `json:"meta"`
	} `json:"providerRequest"`
	ProviderResponse struct {
		Headers  json.RawMessage `json:"headers"`
		Status   float64         `json:"status"`
		JSON     json.RawMessage `json:"json"`
		TextBody string          `json:"textBody"`
	} `json:"providerResponse"`
	Timing struct {
		StartTime        *heliconeTime `json:"startTime"`
		EndTime          *heliconeTime `json:"endTime"`
		TimeToFirstToken *float64      `json:"timeToFirstToken"`
	} `json:"timing"`
	Provider string `json:"provider"`
}

// heliconeTime is {seconds, milliseconds} since the epoch.
type heliconeTime struct {
	Seconds      float64 `json:"seconds"`
	Milliseconds float64 `json:"milliseconds"`
}

func (t *heliconeTime) unixMilli() int64 {
	return int64(t.Seconds*1000) + int64(t.Milliseconds)
}

// maxUnixMilli bounds timestamps (year 2105, what DateTime holds).
const maxUnixMilli = 4291747200000

// parseManualLog decodes and validates a manual-logger body; errors name
// the field.
func parseManualLog(body []byte) (*manualLogBody, error) {
	var ml manualLogBody
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&ml); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, fmt.Errorf("%s: must be a JSON %s, got %s", te.Field, jsonKindOf(te.Type.Kind().String()), te.Value)
		}
		return nil, fmt.Errorf("body must be a Helicone manual-logger JSON object: %v", err)
	}
	if dec.More() {
		return nil, errors.New("body must be a single JSON object")
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"providerRequest.json", ml.ProviderRequest.JSON}, {"providerResponse.json", ml.ProviderResponse.JSON}} {
		if k := firstNonSpace(f.raw); k != 0 && k != '{' && k != 'n' {
			return nil, fmt.Errorf("%s: must be a JSON object", f.name)
		}
	}
	for _, t := range []struct {
		name string
		v    *heliconeTime
	}{{"timing.startTime", ml.Timing.StartTime}, {"timing.endTime", ml.Timing.EndTime}} {
		if t.v == nil {
			continue
		}
		if ms := t.v.unixMilli(); t.v.Seconds < 0 || t.v.Milliseconds < 0 || ms > maxUnixMilli || t.v.Seconds > maxUnixMilli/1000 {
			return nil, fmt.Errorf("%s: must be {seconds, milliseconds} since 1970 before 2106", t.name)
		}
	}
	if st, en := ml.Timing.StartTime, ml.Timing.EndTime; st != nil && en != nil && en.unixMilli() < st.unixMilli() {
		return nil, errors.New("timing.endTime: must not be before timing.startTime")
	}
	if ttft := ml.Timing.TimeToFirstToken; ttft != nil && (*ttft < 0 || *ttft > 1e12) {
		return nil, errors.New("timing.timeToFirstToken: must be milliseconds >= 0")
	}
	if st := ml.ProviderResponse.Status; st != float64(int32(st)) {
		return nil, errors.New("providerResponse.status: must be an HTTP status code")
	}
	return &ml, nil
}

func jsonKindOf(goKind string) string {
	switch goKind {
	case "float64", "int", "int64":
		return "number"
	case "struct", "map":
		return "object"
	case "slice":
		return "array"
	}
	return goKind
}

func firstNonSpace(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c
	}
	return 0
}

// isEmptyJSON reports whether raw is absent, null or {}.
func isEmptyJSON(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || string(t) == "null" {
		return true
	}
	if t[0] != '{' {
		return false
	}
	return len(bytes.TrimSpace(t[1:len(t)-1])) == 0
}

// buildManualRecord turns a parsed manual-logger call into a record: usage
// from providerResponse.json, else textBody (a JSON body, or an SSE stream
// parsed like a proxied stream); cost as the processor computes it.
func buildManualRecord(ml *manualLogBody, route string, hh helicone.Headers, prices *provider.PriceTable, now time.Time) *record.Record {
	prov := route
	if route == "custom" {
		prov = strings.ToLower(strings.TrimSpace(ml.Provider))
		if prov == "" {
			prov = provider.OpenAI
		}
	}
	// The wire format to parse: Anthropic's, else OpenAI's (custom models
	// logged through the helpers usually answer in OpenAI's shape).
	format := provider.OpenAI
	if prov == provider.Anthropic {
		format = provider.Anthropic
	}

	rec := &record.Record{Provider: prov, Method: http.MethodPost}
	hh.Identify(rec)
	// Helicone keeps a logged call's prompt id (HeliconeHeaders.ts, the
	// Helicone-Prompt-Id property); nothing is rendered here.
	rec.PromptID, rec.PromptVersion = hh.PromptID, int32(hh.PromptVersion)
	rec.Path, rec.TargetURL = splitURL(ml.ProviderRequest.URL)

	reqJSON := bytes.TrimSpace(ml.ProviderRequest.JSON)
	if !isEmptyJSON(reqJSON) {
		if req, err := provider.ParseRequest(reqJSON); err == nil {
			rec.Model, rec.Stream = req.Model, req.Stream
			if rec.UserID == "" {
				rec.UserID = req.User
			}
		}
		if !hh.OmitRequest {
			rec.RequestBody = string(reqJSON)
		}
	}

	rec.Status = int32(ml.ProviderResponse.Status)
	if rec.Status == 0 {
		rec.Status = http.StatusOK
	}
	respJSON := bytes.TrimSpace(ml.ProviderResponse.JSON)
	text := ml.ProviderResponse.TextBody
	var usage provider.Usage
	var model string
	switch {
	case !isEmptyJSON(respJSON):
		usage, model, _ = provider.ParseResponse(format, respJSON)
		if !hh.OmitResponse {
			rec.ResponseBody = string(respJSON)
		}
	case strings.TrimSpace(text) != "":
		var stream bool
		usage, model, stream = textUsage(format, []byte(text))
		rec.Stream = rec.Stream || stream
		if !hh.OmitResponse {
			rec.ResponseBody = text
		}
	}
	rec.SetUsage(usage)
	rec.ResponseModel = model
	if rec.Model == "" {
		rec.Model = model
	}

	rec.CreatedAt = now.UTC()
	if st := ml.Timing.StartTime; st != nil {
		rec.CreatedAt = time.UnixMilli(st.unixMilli()).UTC()
		if en := ml.Timing.EndTime; en != nil {
			rec.LatencyMs = en.unixMilli() - st.unixMilli()
		}
	}
	if ttft := ml.Timing.TimeToFirstToken; ttft != nil {
		rec.TTFTMs = int64(*ttft)
	}
	rec.CostUSD = priceRecord(prices, prov, rec)
	return rec
}

// textUsage reads the usage of a textBody: one JSON document (a response,
// or Gemini's array of them); the SSE text of a stream; or a stream's
// chunks as JSON lines, which is what the helpers send for a stream read
// through an SDK (openai-node's toReadableStream writes a chunk per line,
// Helicone's Python builder joins json.dumps of each chunk with "\n").
// Helicone reads all three (valhalla/jawn/src/lib/shared/bodyProcessors:
// each line with or without "data: ").
func textUsage(format string, text []byte) (u provider.Usage, model string, stream bool) {
	if c := firstNonSpace(text); c == '{' || c == '[' {
		if u, model, err := provider.ParseResponse(format, text); err == nil {
			return u, model, false
		}
	}
	acc := provider.NewStreamAccumulator(format)
	if !bytes.Contains(text, []byte("\n{")) && firstNonSpace(text) != '{' {
		acc.Write(text) // plain SSE
	} else {
		// A line that is a JSON object is an event of its own (in SSE it
		// would be a field line to ignore); other lines are SSE as sent,
		// such as the error text the Python builder puts first.
		for line := range bytes.Lines(text) {
			if t := bytes.TrimSpace(line); len(t) > 0 && t[0] == '{' {
				acc.Write([]byte("\ndata: "))
				acc.Write(t)
				acc.Write([]byte("\n\n"))
			} else {
				acc.Write(line)
			}
		}
	}
	acc.Finish()
	return acc.Usage(), acc.Model(), true
}

// splitURL gives the path of the provider URL and, for an absolute URL,
// its origin. Helicone's custom logger sends "custom-model-nopath".
func splitURL(raw string) (path, origin string) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		p, _, _ := strings.Cut(raw, "?")
		return helicone.Truncate(p, 1024), ""
	}
	return u.Path, u.Scheme + "://" + u.Host
}
