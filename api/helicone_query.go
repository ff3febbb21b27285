package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/storage/chquery"
)

// POST /v1/request/query (and /v1/request/query-clickhouse): Helicone's
// request query. The body is Helicone's: a filter tree, sort, limit,
// offset, isCached, isScored, includeInputs, isPartOfExperiment; the answer
// is {"data": [rows with Helicone's field names], "error": null}. The whole
// body is the client's, so everything is checked here against a fixed
// vocabulary (anything else is a 400 naming where it is), and chquery binds
// every value as a parameter, the tenant first.

// Bounds of a query.
const (
	maxQueryBody     = 1 << 20
	maxFilterDepth   = 32
	maxFilterLeaves  = 100
	defaultHLimit    = 10 // Helicone's default
	maxHLimit        = 1000
	maxHOffset       = 10000
	maxFilterKeySize = 256
)

// maxBodyBudget bounds the request and response bodies of one answer
// (chquery.HeliconeQuery.BodyBudget); a variable for the tests.
var maxBodyBudget = 32 << 20

// heliconeSorts are the sort keys Tollgate takes (Helicone's, where the
// column exists, and cost).
var heliconeSorts = map[string]chquery.Field{
	"created_at":        chquery.FieldCreatedAt,
	"latency":           chquery.FieldLatency,
	"total_tokens":      chquery.FieldTotalTokens,
	"completion_tokens": chquery.FieldCompletionTokens,
	"prompt_tokens":     chquery.FieldPromptTokens,
	"user_id":           chquery.FieldUserID,
	"body_model":        chquery.FieldModel,
	"is_cached":         chquery.FieldCacheHit,
	"cost":              chquery.FieldCost,
}

// parsedQuery is a checked query body.
type parsedQuery struct {
	chquery.HeliconeQuery
	none bool // isPartOfExperiment: true: Tollgate has no experiments, so nothing matches
}

// parseHeliconeQuery checks a query body; the error names the field.
func parseHeliconeQuery(body []byte) (*parsedQuery, *paramError) {
	var top map[string]any
	if err := decodeJSON(body, &top); err != nil || top == nil {
		return nil, &paramError{"body", "want a JSON object {filter, sort, limit, offset, …}"}
	}
	q := &parsedQuery{HeliconeQuery: chquery.HeliconeQuery{Limit: defaultHLimit, Desc: true, BodyBudget: maxBodyBudget}}
	for _, k := range sortedKeys(top) {
		v := top[k]
		if v == nil && k != "filter" {
			continue // null is absent, as for Helicone's optional fields
		}
		switch k {
		case "filter":
			p := &filterParser{}
			c, err := p.node(v, "filter", 0)
			if err != nil {
				return nil, err
			}
			q.Filter = c
		case "limit", "offset":
			n, ok := wholeNumber(v)
			hi := maxHLimit
			if k == "offset" {
				hi = maxHOffset
			}
			if !ok || n < 0 || n > int64(hi) {
				return nil, &paramError{k, fmt.Sprintf("want a whole number from 0 to %d", hi)}
			}
			if k == "limit" {
				q.Limit = int(n)
			} else {
				q.Offset = int(n)
			}
		case "sort":
			if err := q.parseSort(v); err != nil {
				return nil, err
			}
		case "isCached", "isScored", "includeInputs", "isPartOfExperiment":
			b, ok := v.(bool)
			if !ok {
				return nil, &paramError{k, "want true or false"}
			}
			switch k {
			case "isCached":
				q.CachedOnly = b
			case "isScored":
				q.Scored = &b
			case "isPartOfExperiment":
				q.none = b
			}
		default:
			return nil, &paramError{keyName(k), "unknown field (want filter, sort, limit, offset, isCached, isScored, includeInputs, isPartOfExperiment)"}
		}
	}
	if _, ok := top["filter"]; !ok {
		return nil, &paramError{"filter", `is required ("all" for every request)`}
	}
	return q, nil
}

func (q *parsedQuery) parseSort(v any) *paramError {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return &paramError{"sort", `want one key and a direction, e.g. {"created_at": "desc"}`}
	}
	for k, dir := range m {
		f, ok := heliconeSorts[k]
		if !ok {
			return &paramError{"sort." + helicone.Truncate(k, 64), "not a sort key Tollgate supports (" + strings.Join(sortedKeys(heliconeSorts), ", ") + ")"}
		}
		switch dir {
		case "asc":
			q.Desc = false
		case "desc":
			q.Desc = true
		default:
			return &paramError{"sort." + k, `want "asc" or "desc"`}
		}
		q.Sort = f
	}
	return nil
}

func wholeNumber(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

// decodeJSON decodes one JSON value, numbers kept as json.Number, nothing
// after it.
func decodeJSON(body []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}

// keyName is a client's key as an error names it: cut short, and visible
// when empty.
func keyName(k string) string {
	if k == "" {
		return `""`
	}
	return helicone.Truncate(k, 64)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// maxHeliconeQueries bounds the Helicone queries in flight: each may scan a
// tenant's bodies (contains on response_body) and hold up to 32 MiB.
// maxTenantQueries is one tenant's share of them, so that a tenant's slow
// queries cannot take every slot and turn the others away.
const (
	maxHeliconeQueries = 8
	maxTenantQueries   = 2
)

// queryHelicone: POST /v1/request/query.
func (s *server) queryHelicone(w http.ResponseWriter, r *http.Request, tenant string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxQueryBody))
	if err != nil {
		writeHeliconeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: larger than %d bytes or unreadable", maxQueryBody))
		return
	}
	q, perr := parseHeliconeQuery(body)
	if perr != nil {
		writeHeliconeError(w, http.StatusBadRequest, perr.name+": "+perr.why)
		return
	}
	if s.o.Query == nil {
		writeHeliconeError(w, http.StatusServiceUnavailable, "query API needs ClickHouse")
		return
	}
	out := []heliconeRow{}
	if !q.none && q.Limit > 0 {
		if !s.tenantQueries.acquire(tenant, maxTenantQueries) {
			writeHeliconeError(w, http.StatusServiceUnavailable, "too many of this tenant's queries in flight; retry")
			return
		}
		defer s.tenantQueries.release(tenant)
		select {
		case s.queries <- struct{}{}:
			defer func() { <-s.queries }()
		default:
			writeHeliconeError(w, http.StatusServiceUnavailable, "too many queries in flight; retry")
			return
		}
		rows, err := s.o.Query.QueryHelicone(r.Context(), tenant, q.HeliconeQuery)
		if err != nil {
			s.o.Logger.Error("api: helicone query failed", "err", err)
			writeHeliconeError(w, http.StatusServiceUnavailable, "query failed: ClickHouse unavailable or overloaded")
			return
		}
		for _, row := range rows {
			out = append(out, toHeliconeRow(row))
		}
	}
	writeHeliconeData(w, http.StatusOK, out)
}
