package api

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chquery"
)

const (
	defaultLimit = 50
	maxLimit     = 500
	maxBuckets   = 10000
)

// Queries runs the read API (a *chquery.Requests reads ClickHouse).
type Queries interface {
	// List returns up to limit requests matching f, newest first, after
	// the cursor; next is nil on the last page.
	List(ctx context.Context, f chquery.Filter, limit int, after *chquery.Cursor) (recs []*record.Record, next *chquery.Cursor, err error)
	// Get returns one request with its bodies and rating; nil when unknown.
	// A non-empty tenant restricts the lookup to that tenant.
	Get(ctx context.Context, id, tenant string) (*chquery.Detail, error)
	// Stats aggregates the requests matching f (From and To set) in
	// buckets of bucket seconds; groupProperty (optional) adds a cost
	// breakdown by that property's value.
	Stats(ctx context.Context, f chquery.Filter, bucket int64, groupProperty string) (*chquery.Stats, error)
	// Exists reports whether request id is in tenant's log.
	Exists(ctx context.Context, id, tenant string) (bool, error)
	// InsertScores stores named scores of request id in tenant.
	InsertScores(ctx context.Context, tenant, id string, at time.Time, scores []chquery.Score) error
	// QueryHelicone runs a Helicone-compatible query over tenant's requests.
	QueryHelicone(ctx context.Context, tenant string, q chquery.HeliconeQuery) ([]*chquery.HeliconeRow, error)
}

// paramError names the query parameter that is wrong.
type paramError struct{ name, why string }

// parseFilter reads the filters shared by /v1/requests and /v1/stats.
func parseFilter(q url.Values) (chquery.Filter, *paramError) {
	f := chquery.Filter{
		Tenant: q.Get("tenant"), User: q.Get("user"), Session: q.Get("session"),
		Model: q.Get("model"), Provider: q.Get("provider"),
		WorkloadNamespace: q.Get("workload_namespace"), WorkloadName: q.Get("workload_name"),
	}
	for _, kv := range q["property"] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return f, &paramError{"property", "want name=value, got " + strconv.Quote(helicone.Truncate(kv, 64))}
		}
		f.Properties = append(f.Properties, record.Property{Key: strings.ToLower(k), Value: v})
	}
	if s := q.Get("status"); s != "" {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return f, &paramError{"status", "want an integer HTTP status"}
		}
		st := int32(n)
		f.Status = &st
	}
	if s := q.Get("cache_hit"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return f, &paramError{"cache_hit", "want true or false"}
		}
		f.CacheHit = &b
	}
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if s := q.Get(p.name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return f, &paramError{p.name, "want an RFC 3339 time such as 2026-01-02T15:04:05Z"}
			}
			*p.t = t.UTC()
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From) {
		return f, &paramError{"to", "must be after from"}
	}
	return f, nil
}

type summary struct {
	*record.Record
	// Bodies are left out of lists (shadowing the embedded fields).
	RequestBody  *struct{} `json:"request_body,omitempty"`
	ResponseBody *struct{} `json:"response_body,omitempty"`
}

type listResponse struct {
	Requests   []summary `json:"requests"`
	NextCursor string    `json:"next_cursor,omitempty"`
}

func (s *server) needQuery(w http.ResponseWriter) bool {
	if s.o.Query == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "query API needs ClickHouse")
		return false
	}
	return true
}

// listRequests: GET /v1/requests.
func (s *server) listRequests(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, perr := parseFilter(q)
	if perr != nil {
		badParam(w, perr.name, perr.why)
		return
	}
	limit := defaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			badParam(w, "limit", "want an integer from 1 to 500")
			return
		}
		limit = n
	}
	var after *chquery.Cursor
	if v := q.Get("cursor"); v != "" {
		c, err := decodeCursor(v)
		if err != nil {
			badParam(w, "cursor", err.Error())
			return
		}
		after = c
	}
	if !s.needQuery(w) {
		return
	}
	recs, next, err := s.o.Query.List(r.Context(), f, limit, after)
	if err != nil {
		s.queryFailed(w, err)
		return
	}
	out := listResponse{Requests: make([]summary, 0, len(recs))}
	for _, rec := range recs {
		out.Requests = append(out.Requests, summary{Record: rec})
	}
	if next != nil {
		out.NextCursor = encodeCursor(*next)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) queryFailed(w http.ResponseWriter, err error) {
	s.o.Logger.Error("api: query failed", "err", err)
	writeError(w, http.StatusServiceUnavailable, "unavailable", "query failed: ClickHouse unavailable or overloaded")
}

// getRequest: GET /v1/requests/{id}[?tenant=].
func (s *server) getRequest(w http.ResponseWriter, r *http.Request) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		badParam(w, "id", "must be a UUID")
		return
	}
	if !s.needQuery(w) {
		return
	}
	d, err := s.o.Query.Get(r.Context(), id.String(), r.URL.Query().Get("tenant"))
	if err != nil {
		s.queryFailed(w, err)
		return
	}
	if d == nil {
		writeError(w, http.StatusNotFound, "not_found", "no request "+id.String())
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// stats: GET /v1/stats?from&to[&bucket=seconds][&group_property=name] and
// the filters of /v1/requests. from defaults to 24 h before to, to to now.
func (s *server) stats(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, perr := parseFilter(q)
	if perr != nil {
		badParam(w, perr.name, perr.why)
		return
	}
	if f.To.IsZero() {
		f.To = s.o.Now().UTC().Truncate(time.Second).Add(time.Second)
	}
	if f.From.IsZero() {
		f.From = f.To.Add(-24 * time.Hour)
	}
	if !f.To.After(f.From) {
		badParam(w, "from", "must be before to")
		return
	}
	span := int64(f.To.Sub(f.From) / time.Second)
	bucket := defaultBucket(span)
	if v := q.Get("bucket"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > 366*86400 {
			badParam(w, "bucket", "want seconds from 1 to 31622400")
			return
		}
		bucket = n
	}
	if span/bucket > maxBuckets {
		badParam(w, "bucket", "too small for the range: at most 10000 buckets")
		return
	}
	group := strings.ToLower(q.Get("group_property"))
	if !s.needQuery(w) {
		return
	}
	st, err := s.o.Query.Stats(r.Context(), f, bucket, group)
	if err != nil {
		s.queryFailed(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// encodeCursor is the cursor as the API hands it out: opaque text.
func encodeCursor(c chquery.Cursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatUint(uint64(c.Second), 10) + ":" + c.RequestID))
}

func decodeCursor(s string) (*chquery.Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("not a cursor returned by this API")
	}
	sec, id, ok := strings.Cut(string(b), ":")
	n, err := strconv.ParseUint(sec, 10, 32)
	if !ok || err != nil {
		return nil, errors.New("not a cursor returned by this API")
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return nil, errors.New("not a cursor returned by this API")
	}
	return &chquery.Cursor{Second: uint32(n), RequestID: u.String()}, nil
}

// defaultBucket aims at 24–1440 buckets.
func defaultBucket(span int64) int64 {
	switch {
	case span <= 6*3600:
		return 60
	case span <= 3*86400:
		return 3600
	default:
		return 86400
	}
}
