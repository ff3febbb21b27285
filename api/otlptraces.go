package api

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/otelspan"
	"github.com/tollgate-dev/tollgate/provider"
	"github.com/tollgate-dev/tollgate/record"
)

// traces: POST /v1/traces, OTLP/HTTP (binary protobuf or JSON). Each span
// with gen_ai.* attributes becomes a record, logged like the other
// out-of-band calls; the others are skipped and reported in the answer's
// partial_success, as OTLP does for what a receiver does not take. A bad
// span refuses the whole request with a 400 naming its field, so that the
// sender does not retry it; errors are google.rpc.Status in the request's
// encoding, as OTLP/HTTP prescribes.
func (s *server) traces(w http.ResponseWriter, r *http.Request) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	jsonBody := mt == "application/json"
	if !jsonBody && mt != "application/x-protobuf" {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "send Content-Type: application/x-protobuf or application/json (OTLP/HTTP)")
		return
	}
	body, ok := readBodyLimit(w, r, maxTraceBodyBytes, " (the limit of /v1/traces): send smaller batches")
	if !ok {
		return
	}
	// From here on the request holds memory: a few at a time (otlptraces_limits.go).
	if !acquireTraceDecode(r.Context()) {
		w.Header().Set("Retry-After", "1")
		writeOTLPError(w, jsonBody, http.StatusServiceUnavailable, "too many OTLP requests are being decoded: retry later")
		return
	}
	defer releaseTraceDecode()
	if strings.EqualFold(strings.TrimSpace(r.Header.Get("Content-Encoding")), "gzip") {
		if body, ok = gunzipBody(w, body); !ok {
			return
		}
	}
	req, err := decodeTraces(body, jsonBody)
	if err != nil {
		writeOTLPError(w, jsonBody, http.StatusBadRequest, err.Error())
		return
	}
	tenant, err := s.loggerTenant(r, r.Header.Get(helicone.Auth))
	if err != nil {
		writeError(w, http.StatusUnauthorized, "unauthorized", err.Error())
		return
	}
	recs, skipped, err := spanRecords(req, s.o.Prices, s.o.Now())
	if err != nil {
		writeOTLPError(w, jsonBody, http.StatusBadRequest, err.Error())
		return
	}
	if len(recs) > 0 && s.o.Sink == nil {
		writeOTLPError(w, jsonBody, http.StatusServiceUnavailable, "no log sink is configured")
		return
	}
	for _, rec := range recs {
		rec.Tenant = tenant
		s.write(w, rec) // cannot fail: the sink is there
	}
	resp := &coltracepb.ExportTraceServiceResponse{}
	if skipped.spans > 0 {
		resp.PartialSuccess = &coltracepb.ExportTracePartialSuccess{RejectedSpans: int64(skipped.spans), ErrorMessage: skipped.message()}
	}
	writeOTLP(w, jsonBody, http.StatusOK, resp)
}

// gunzipBody inflates a gzip body within the route's body limit.
func gunzipBody(w http.ResponseWriter, body []byte) ([]byte, bool) {
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err == nil {
		body, err = io.ReadAll(io.LimitReader(zr, maxTraceBodyBytes+1))
	}
	switch {
	case err != nil:
		writeError(w, http.StatusBadRequest, "invalid_body", "Content-Encoding gzip: "+err.Error())
		return nil, false
	case len(body) > maxTraceBodyBytes:
		writeError(w, http.StatusRequestEntityTooLarge, "too_large",
			fmt.Sprintf("body is larger than %d bytes once inflated (the limit of /v1/traces): send smaller batches", maxTraceBodyBytes))
		return nil, false
	}
	return body, true
}

// decodeTraces reads an ExportTraceServiceRequest. OTLP's JSON differs
// from protojson in one way that matters here: trace and span ids are hex,
// not base64. Hex digits are all base64 letters and OTLP's id lengths (32
// and 16) are multiples of 4, so protojson reads a hex id as base64
// without error; re-encoding those bytes gives the hex text back, which is
// then decoded as hex (fixIDs). Unknown fields are ignored, as OTLP asks.
func decodeTraces(body []byte, jsonBody bool) (*coltracepb.ExportTraceServiceRequest, error) {
	req := &coltracepb.ExportTraceServiceRequest{}
	if !jsonBody {
		if err := countTraceObjects(body); err != nil {
			return nil, err
		}
		if err := proto.Unmarshal(body, req); err != nil {
			return nil, fmt.Errorf("body must be an OTLP ExportTraceServiceRequest in protobuf: %v", err)
		}
		return req, nil
	}
	if err := countJSONObjects(body); err != nil {
		return nil, err
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, req); err != nil {
		return nil, fmt.Errorf("body must be an OTLP ExportTraceServiceRequest in JSON: %v", err)
	}
	if err := checkTraceLimits(req); err != nil {
		return nil, err
	}
	for i, rs := range req.GetResourceSpans() {
		for j, ss := range rs.GetScopeSpans() {
			for k, sp := range ss.GetSpans() {
				at := fmt.Sprintf("resourceSpans[%d].scopeSpans[%d].spans[%d].", i, j, k)
				var err error
				if sp.TraceId, err = fixID(sp.TraceId); err != nil {
					return nil, errors.New(at + "traceId: must be 32 hex digits")
				}
				if sp.SpanId, err = fixID(sp.SpanId); err != nil {
					return nil, errors.New(at + "spanId: must be 16 hex digits")
				}
				if sp.ParentSpanId, err = fixID(sp.ParentSpanId); err != nil {
					return nil, errors.New(at + "parentSpanId: must be 16 hex digits")
				}
			}
		}
	}
	return req, nil
}

func fixID(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return b, nil
	}
	return hex.DecodeString(base64.StdEncoding.EncodeToString(b))
}

// skippedSpans counts the spans that made no record, by reason.
type skippedSpans struct{ spans, notGenAI, own int }

func (k skippedSpans) message() string {
	var parts []string
	if k.notGenAI > 0 {
		parts = append(parts, fmt.Sprintf("%d spans without gen_ai.* attributes were skipped", k.notGenAI))
	}
	if k.own > 0 {
		parts = append(parts, fmt.Sprintf("%d spans exported by Tollgate itself were skipped: their calls are logged already", k.own))
	}
	return strings.Join(parts, "; ")
}

// spanRecords turns the GenAI spans of req into records; the error names
// the field of the first bad span (and no record is kept).
func spanRecords(req *coltracepb.ExportTraceServiceRequest, prices *provider.PriceTable, now time.Time) ([]*record.Record, skippedSpans, error) {
	var recs []*record.Record
	var skipped skippedSpans
	for i, rs := range req.GetResourceSpans() {
		for j, ss := range rs.GetScopeSpans() {
			own := ss.GetScope().GetName() == otelspan.ScopeName
			for k, sp := range ss.GetSpans() {
				attrs := spanAttrs(sp.GetAttributes())
				switch {
				case !attrs.genAI:
					skipped.spans++
					skipped.notGenAI++
					continue
				case own:
					skipped.spans++
					skipped.own++
					continue
				}
				rec, field, err := spanRecord(sp, attrs, prices, now)
				if err != nil {
					return nil, skippedSpans{}, fmt.Errorf("resourceSpans[%d].scopeSpans[%d].spans[%d].%s: %v", i, j, k, field, err)
				}
				recs = append(recs, rec)
			}
		}
	}
	return recs, skipped, nil
}

// spanNamespace makes a span's request id from its trace and span ids, so
// that a batch the sender retries is the same rows again (the table keeps
// one per request id), not a second copy of each call.
var spanNamespace = uuid.MustParse("6f1c2b0e-5d4a-4c8e-9a57-0b7e3f1d2c64")

// A span's start is the record's created_at, which picks its monthly
// partition: spans spread over years would make one insert touch more
// partitions than ClickHouse takes (max_partitions_per_insert_block) and
// stall the writer's queue. Spans are logged as they end, so a start
// older than a month or ahead of the clock is refused.
const (
	maxSpanAge   = 30 * 24 * time.Hour
	maxSpanAhead = time.Hour
)

// maxUnixNano bounds span times (2106, what DateTime holds).
const maxUnixNano = maxUnixMilli * uint64(time.Millisecond)

// spanRecord maps one GenAI span: the attribute names otelspan exports,
// so that Tollgate's own span reads back as the same call; on error it
// names the field.
func spanRecord(sp *tracepb.Span, a attrSet, prices *provider.PriceTable, now time.Time) (*record.Record, string, error) {
	rec := &record.Record{
		Provider:      otelspan.FromProviderName(a.str(otelspan.AttrProviderName, otelspan.AttrSystem)),
		Model:         a.str(otelspan.AttrRequestModel),
		ResponseModel: a.str(otelspan.AttrResponseModel),
		UserID:        a.str(otelspan.AttrUserID, "enduser.id"),
		SessionID:     a.str(otelspan.AttrSessionID, otelspan.AttrConversationID),
		SessionPath:   a.str(otelspan.AttrSessionPath),
		SessionName:   a.str(otelspan.AttrSessionName),
		RequestName:   a.str(otelspan.AttrRequestName),
		PromptID:      a.str(otelspan.AttrPromptID),
		Path:          a.str(otelspan.AttrURLPath),
		Stream:        a.boolean(otelspan.AttrRequestStream),
		RateLimited:   a.boolean(otelspan.AttrRateLimited),
		Status:        200,
	}
	if rec.Provider == "" {
		rec.Provider = "custom" // as a manual log names no provider
	}
	// Never tollgate.request_id: a span naming a proxied call's id (and its
	// start, the row's version) would overwrite that call's record.
	switch {
	case len(sp.GetTraceId()) == 16 && len(sp.GetSpanId()) == 8:
		rec.RequestID = uuid.NewSHA1(spanNamespace, append(append([]byte{}, sp.GetTraceId()...), sp.GetSpanId()...)).String()
	default:
		rec.RequestID = record.NewID()
	}

	start, end := sp.GetStartTimeUnixNano(), sp.GetEndTimeUnixNano()
	switch {
	case start > maxUnixNano:
		return nil, "startTimeUnixNano", errors.New("must be before 2106")
	case end > maxUnixNano:
		return nil, "endTimeUnixNano", errors.New("must be before 2106")
	case start == 0:
		rec.CreatedAt = now.UTC()
	case end != 0 && end < start:
		return nil, "endTimeUnixNano", errors.New("must not be before startTimeUnixNano")
	case time.Unix(0, int64(start)).Before(now.Add(-maxSpanAge)):
		return nil, "startTimeUnixNano", fmt.Errorf("must be within the last %d days (this span started %s)", maxSpanAge/(24*time.Hour), time.Unix(0, int64(start)).UTC().Format(time.RFC3339))
	case time.Unix(0, int64(start)).After(now.Add(maxSpanAhead)):
		return nil, "startTimeUnixNano", fmt.Errorf("must not be more than an hour ahead of the server's clock (this span starts %s)", time.Unix(0, int64(start)).UTC().Format(time.RFC3339))
	default:
		rec.CreatedAt = time.Unix(0, int64(start)).UTC()
		if end != 0 {
			rec.LatencyMs = int64(end-start) / int64(time.Millisecond)
		}
	}

	for _, c := range []struct {
		dst  *int64
		keys []string
	}{
		{&rec.PromptTokens, []string{otelspan.AttrInputTokens, otelspan.AttrPromptTokensOld}},
		{&rec.CompletionTokens, []string{otelspan.AttrOutputTokens, otelspan.AttrCompletionTokensOld}},
		{&rec.CachedTokens, []string{otelspan.AttrCacheReadTokens}},
		{&rec.CacheWriteTokens, []string{otelspan.AttrCacheWriteTkns}},
		{&rec.ReasoningTokens, []string{otelspan.AttrReasoningTokens}},
	} {
		for _, k := range c.keys {
			n, ok, err := a.count(k)
			if err != nil {
				return nil, attrField(k), err
			}
			if ok {
				*c.dst = n
				break
			}
		}
	}
	for _, c := range []struct {
		dst *int32
		key string
	}{{&rec.PromptVersion, otelspan.AttrPromptVersion}, {&rec.FallbackIndex, otelspan.AttrFallbackIndex}, {&rec.Attempts, otelspan.AttrAttempts}} {
		n, _, err := a.count(c.key)
		if err == nil && n > math.MaxInt32 {
			err = errors.New("must be below 2^31")
		}
		if err != nil {
			return nil, attrField(c.key), err
		}
		*c.dst = int32(n)
	}
	if ttft, ok, err := a.number(otelspan.AttrTimeToFirstChunk); err != nil || (ok && ttft > 1e9) {
		return nil, attrField(otelspan.AttrTimeToFirstChunk), cmpErr(err, errors.New("must be seconds, at most 1e9"))
	} else if ok {
		rec.TTFTMs = int64(ttft * 1000)
	}

	if code, ok, err := a.count(otelspan.AttrHTTPStatus); err != nil || (ok && (code < 100 || code > 599)) {
		return nil, attrField(otelspan.AttrHTTPStatus), cmpErr(err, errors.New("must be an HTTP status from 100 to 599"))
	} else if ok {
		rec.Status = int32(code)
	} else if sp.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		rec.Status = errorStatus(a.str(otelspan.AttrErrorType))
	}
	if sp.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		rec.Error = strings.ToValidUTF8(sp.GetStatus().GetMessage(), "")
		if rec.Error == "" {
			rec.Error = cmp.Or(a.str(otelspan.AttrErrorType), "error")
		}
	}

	switch a.str(otelspan.AttrCache) {
	case otelspan.CacheHit, otelspan.CacheSemantic:
		rec.CacheHit = true
		rec.CacheReferenceID = a.str(otelspan.AttrCacheRef)
	}
	for k, v := range a.m {
		if key, ok := strings.CutPrefix(k, otelspan.AttrPropertyPrefix); ok && key != "" {
			if sv, ok := v.GetValue().(*commonpb.AnyValue_StringValue); ok {
				rec.Properties = append(rec.Properties, record.Property{Key: strings.ToLower(key), Value: sv.StringValue})
			}
		}
	}
	rec.Properties = record.SortProperties(rec.Properties)

	cost, ok, err := a.number(otelspan.AttrCostUSD)
	switch {
	case err != nil:
		return nil, attrField(otelspan.AttrCostUSD), err
	case ok:
		rec.CostUSD = cost
	case !rec.CacheHit: // priced as a proxied call would be
		rec.CostUSD = priceRecord(prices, rec.Provider, rec)
	}
	return rec, "", nil
}

// errorStatus is the record's status for a failed span without
// http.response.status_code: error.type when it is a status (as otelspan
// exports it), the negative statuses for a timeout or a cancelled call,
// else 500.
func errorStatus(errorType string) int32 {
	switch errorType {
	case otelspan.ErrorTimeout:
		return record.StatusTimeout
	case otelspan.ErrorCancelled:
		return record.StatusClientCancelled
	}
	if n, err := strconv.Atoi(errorType); err == nil && n >= 100 && n <= 599 {
		return int32(n)
	}
	return 500
}

func attrField(key string) string { return `attributes["` + key + `"]` }

func cmpErr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

// writeOTLP answers in the request's encoding.
func writeOTLP(w http.ResponseWriter, jsonBody bool, code int, m proto.Message) {
	var b []byte
	if jsonBody {
		w.Header().Set("Content-Type", "application/json")
		b, _ = protojson.Marshal(m)
	} else {
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ = proto.Marshal(m)
	}
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// writeOTLPError answers a google.rpc.Status, as OTLP/HTTP's exporters
// read the reason of a refusal.
func writeOTLPError(w http.ResponseWriter, jsonBody bool, code int, msg string) {
	c := codes.InvalidArgument
	if code == http.StatusServiceUnavailable {
		c = codes.Unavailable
	}
	writeOTLP(w, jsonBody, code, &status.Status{Code: int32(c), Message: msg})
}
