package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"google.golang.org/protobuf/encoding/protojson"

	tollgatev1 "github.com/tollgate-dev/tollgate/proto/tollgate/v1"
	"github.com/tollgate-dev/tollgate/provider"
	"github.com/tollgate-dev/tollgate/record"
)

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	return readBodyLimit(w, r, maxBodyBytes, "")
}

// readBodyLimit reads at most limit bytes: beyond them a 413 whose message
// ends with hint (what to do instead, if anything).
func readBodyLimit(w http.ResponseWriter, r *http.Request, limit int64, hint string) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body is larger than %d bytes%s", limit, hint))
		} else {
			writeError(w, http.StatusBadRequest, "invalid_body", "reading body: "+err.Error())
		}
		return nil, false
	}
	return body, true
}

// logRequest: POST /v1/log/request with a protojson tollgate.v1.LogRequest.
func (s *server) logRequest(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var in tollgatev1.LogRequest
	if err := protojson.Unmarshal(body, &in); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_body", "body must be a tollgate.v1.LogRequest in protojson: "+err.Error())
		return
	}
	if in.GetRecord() == nil {
		badParam(w, "record", "is required")
		return
	}
	rec, field, err := s.fromProto(in.GetRecord())
	if err != nil {
		badParam(w, field, err.Error())
		return
	}
	if rec.Tenant == "" {
		if rec.Tenant, err = s.tenantOf(r); err != nil {
			writeError(w, http.StatusUnauthorized, "unauthorized", err.Error())
			return
		}
	}
	if !s.write(w, rec) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": rec.RequestID})
}

func (s *server) write(w http.ResponseWriter, rec *record.Record) bool {
	if s.o.Sink == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "no log sink is configured")
		return false
	}
	rec.RequestBody = record.CapBody(rec.RequestBody, s.o.MaxLoggedBody)
	rec.ResponseBody = record.CapBody(rec.ResponseBody, s.o.MaxLoggedBody)
	if rec.UsageSource == "" && rec.Usage() != (provider.Usage{}) {
		rec.UsageSource = record.UsageProvider // counts the caller had from its provider
	}
	s.o.Sink.Write(rec)
	return true
}

// fromProto converts an ingested LogRecord; on error it names the field.
func (s *server) fromProto(p *tollgatev1.LogRecord) (*record.Record, string, error) {
	id, err := requestID(p.GetRequestId())
	if err != nil {
		return nil, "record.request_id", err
	}
	rec := &record.Record{
		RequestID: id, Tenant: p.GetTenant(), UserID: p.GetUserId(),
		SessionID: p.GetSessionId(), SessionPath: p.GetSessionPath(), SessionName: p.GetSessionName(),
		RequestName: p.GetRequestName(),
		Provider:    strings.ToLower(p.GetProvider()), Model: p.GetModel(), ResponseModel: p.GetResponseModel(),
		Method: p.GetMethod(), Path: p.GetPath(), TargetURL: p.GetTargetUrl(),
		Status: p.GetStatus(), Stream: p.GetStream(),
		PromptTokens: p.GetPromptTokens(), CompletionTokens: p.GetCompletionTokens(),
		CachedTokens: p.GetCachedTokens(), CacheWriteTokens: p.GetCacheWriteTokens(),
		ReasoningTokens: p.GetReasoningTokens(), CostUSD: p.GetCostUsd(),
		LatencyMs: p.GetLatencyMs(), TTFTMs: p.GetTtftMs(),
		CacheHit: p.GetCacheHit(), CacheReferenceID: p.GetCacheReferenceId(), RateLimited: p.GetRateLimited(),
		PromptID: p.GetPromptId(), PromptVersion: p.GetPromptVersion(), FallbackIndex: p.GetFallbackIndex(),
		Attempts: p.GetAttempts(), RetryPolicy: p.GetRetryPolicy(),
		WorkloadNamespace: p.GetWorkloadNamespace(), WorkloadServiceAccount: p.GetWorkloadServiceAccount(),
		WorkloadName: p.GetWorkloadName(), PolicyRule: p.GetPolicyRule(), PolicyDecision: p.GetPolicyDecision(),
		RequestBody: p.GetRequestBody(), ResponseBody: p.GetResponseBody(), Error: p.GetError(),
		ModelOverride: strings.TrimSpace(p.GetModelOverride()), Warnings: p.GetWarnings(), ProxyKeyID: p.GetProxyKeyId(),
		UsageSource: p.GetUsageSource(), CacheSimilarity: p.GetCacheSimilarity(),
	}
	if p.GetCreatedAt() != nil {
		if err := p.GetCreatedAt().CheckValid(); err != nil {
			return nil, "record.created_at", err
		}
		rec.CreatedAt = p.GetCreatedAt().AsTime().UTC()
	} else {
		rec.CreatedAt = s.o.Now().UTC()
	}
	for i, pr := range p.GetProperties() {
		if pr.GetKey() == "" {
			return nil, fmt.Sprintf("record.properties[%d].key", i), errors.New("must not be empty")
		}
		rec.Properties = append(rec.Properties, record.Property{Key: strings.ToLower(pr.GetKey()), Value: pr.GetValue()})
	}
	rec.Properties = record.SortProperties(rec.Properties)
	for _, c := range []struct {
		name string
		v    int64
	}{{"record.prompt_tokens", rec.PromptTokens}, {"record.completion_tokens", rec.CompletionTokens},
		{"record.cached_tokens", rec.CachedTokens}, {"record.cache_write_tokens", rec.CacheWriteTokens},
		{"record.reasoning_tokens", rec.ReasoningTokens}, {"record.latency_ms", rec.LatencyMs}, {"record.ttft_ms", rec.TTFTMs},
		{"record.attempts", int64(rec.Attempts)}} {
		if c.v < 0 {
			return nil, c.name, errors.New("must not be negative")
		}
	}
	if rec.CostUSD < 0 {
		return nil, "record.cost_usd", errors.New("must not be negative")
	}
	switch rec.UsageSource {
	case "", record.UsageProvider, record.UsageEstimated:
	default:
		return nil, "record.usage_source", fmt.Errorf("must be %q, %q or empty", record.UsageProvider, record.UsageEstimated)
	}
	if sim := rec.CacheSimilarity; !(sim >= 0 && sim <= 1) { // NaN too
		return nil, "record.cache_similarity", errors.New("must be from 0 to 1")
	}
	if rec.CostUSD == 0 && !rec.CacheHit {
		rec.CostUSD = s.cost(rec.Provider, rec)
	}
	return rec, "", nil
}

// requestID validates a client-supplied id (a UUID) or makes a UUIDv7.
func requestID(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return record.NewID(), nil
	}
	id, err := uuid.Parse(raw)
	if err != nil {
		return "", errors.New("must be a UUID")
	}
	return id.String(), nil
}

// cost prices a record exactly as the processor does (processor/finish.go):
// no tokens cost 0; a Helicone-Model-Override alone, else the response's
// model first (a dated snapshot may have its own price), then the
// requested one (record.PriceModels); unknown 0.
func (s *server) cost(format string, rec *record.Record) float64 {
	return priceRecord(s.o.Prices, format, rec)
}

func priceRecord(prices *provider.PriceTable, format string, rec *record.Record) float64 {
	cost, _ := prices.CallCost(format, rec.Usage(), rec.PriceModels()...)
	return cost
}
