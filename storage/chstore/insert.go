package chstore

import (
	"context"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chschema"
)

// sender is what the writer needs from ClickHouse; tests substitute fakes.
type sender interface {
	insert(ctx context.Context, recs []*record.Record) error
	ping(ctx context.Context) error
}

// sendBlockRows is the size of the native blocks an insert is sent in.
var sendBlockRows = 2000

// chSender inserts into the requests table with a native-protocol batch.
// Safe for concurrent use: each insert takes its column buffers from a
// pool.
type chSender struct {
	conn driver.Conn
	sql  string
	bufs sync.Pool // *requestColumnsBuf
}

func newCHSender(conn driver.Conn, db string) *chSender {
	return &chSender{conn: conn, sql: chschema.InsertRequestsSQL(db)}
}

func (s *chSender) ping(ctx context.Context) error { return s.conn.Ping(ctx) }

func (s *chSender) insert(ctx context.Context, recs []*record.Record) error {
	cols, _ := s.bufs.Get().(*requestColumnsBuf)
	if cols == nil {
		cols = &requestColumnsBuf{}
	}
	defer func() {
		cols.reset() // the bodies of this batch must not stay reachable
		s.bufs.Put(cols)
	}()
	batch, err := s.conn.PrepareBatch(ctx, s.sql)
	if err != nil {
		return err
	}
	defer batch.Close()
	// Send large inserts in blocks of sendBlockRows: the driver reuses a
	// block's buffers after Flush, instead of growing one huge block by
	// copying (which cost more CPU than everything else on the client).
	// The server squashes the blocks of one INSERT into one part.
	for start := 0; start < len(recs); start += sendBlockRows {
		end := min(start+sendBlockRows, len(recs))
		cols.reset()
		for _, r := range recs[start:end] {
			cols.add(r)
		}
		for i, v := range cols.values() {
			if err := batch.Column(i).Append(v); err != nil {
				return err
			}
		}
		if end < len(recs) {
			if err := batch.Flush(); err != nil {
				return err
			}
		}
	}
	return batch.Send()
}

// requestColumnsBuf holds one batch column by column (appending whole
// columns avoids boxing every value of every row). values() must follow
// insertColumnNames.
type requestColumnsBuf struct {
	requestID                                                     []uuid.UUID
	createdAt                                                     []time.Time
	tenant, userID, sessionID, sessionPath, sessionName, reqName  []string
	propKeys, propValues                                          [][]string
	provider, model, responseModel, method, path, targetURL       []string
	status                                                        []int32
	stream                                                        []uint8
	promptTok, completionTok, cachedTok, cacheWriteTok, reasonTok []int64
	cost                                                          []float64
	latency, ttft                                                 []int64
	cacheHit                                                      []uint8
	cacheRef                                                      []string
	rateLimited                                                   []uint8
	promptID                                                      []string
	promptVersion, fallback                                       []int32
	attempts                                                      []int32
	retryPolicy, wlNamespace, wlServiceAccount, wlName            []string
	policyRule, policyDecision                                    []string
	reqBody, respBody, errText                                    []string
	modelOverride, warnings, proxyKeyID                           []string
	usageSource                                                   []string
	cacheSimilarity                                               []float32
}

func (c *requestColumnsBuf) values() []any {
	return []any{
		c.requestID, c.createdAt, c.tenant, c.userID, c.sessionID, c.sessionPath, c.sessionName, c.reqName,
		c.propKeys, c.propValues,
		c.provider, c.model, c.responseModel, c.method, c.path, c.targetURL,
		c.status, c.stream,
		c.promptTok, c.completionTok, c.cachedTok, c.cacheWriteTok, c.reasonTok, c.cost,
		c.latency, c.ttft,
		c.cacheHit, c.cacheRef, c.rateLimited, c.promptID, c.promptVersion, c.fallback,
		c.attempts, c.retryPolicy, c.wlNamespace, c.wlServiceAccount, c.wlName, c.policyRule, c.policyDecision,
		c.reqBody, c.respBody, c.errText,
		c.modelOverride, c.warnings, c.proxyKeyID,
		c.usageSource,
		c.cacheSimilarity,
	}
}

func (c *requestColumnsBuf) reset() {
	clear(c.propKeys) // drop references to the last batch's slices
	clear(c.propValues)
	*c = requestColumnsBuf{
		requestID: c.requestID[:0], createdAt: c.createdAt[:0],
		tenant: c.tenant[:0], userID: c.userID[:0], sessionID: c.sessionID[:0],
		sessionPath: c.sessionPath[:0], sessionName: c.sessionName[:0], reqName: c.reqName[:0],
		propKeys: c.propKeys[:0], propValues: c.propValues[:0],
		provider: c.provider[:0], model: c.model[:0], responseModel: c.responseModel[:0],
		method: c.method[:0], path: c.path[:0], targetURL: c.targetURL[:0],
		status: c.status[:0], stream: c.stream[:0],
		promptTok: c.promptTok[:0], completionTok: c.completionTok[:0], cachedTok: c.cachedTok[:0],
		cacheWriteTok: c.cacheWriteTok[:0], reasonTok: c.reasonTok[:0], cost: c.cost[:0],
		latency: c.latency[:0], ttft: c.ttft[:0],
		cacheHit: c.cacheHit[:0], cacheRef: c.cacheRef[:0], rateLimited: c.rateLimited[:0],
		promptID: c.promptID[:0], promptVersion: c.promptVersion[:0], fallback: c.fallback[:0],
		attempts: c.attempts[:0], retryPolicy: c.retryPolicy[:0],
		wlNamespace: c.wlNamespace[:0], wlServiceAccount: c.wlServiceAccount[:0], wlName: c.wlName[:0],
		policyRule: c.policyRule[:0], policyDecision: c.policyDecision[:0],
		reqBody: c.reqBody[:0], respBody: c.respBody[:0], errText: c.errText[:0],
		modelOverride: c.modelOverride[:0], warnings: c.warnings[:0], proxyKeyID: c.proxyKeyID[:0],
		usageSource: c.usageSource[:0], cacheSimilarity: c.cacheSimilarity[:0],
	}
	// Large bodies must not stay reachable through the reused arrays.
	clear(c.reqBody[:cap(c.reqBody)])
	clear(c.respBody[:cap(c.respBody)])
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func (c *requestColumnsBuf) add(r *record.Record) {
	id, err := uuid.Parse(r.RequestID)
	if err != nil {
		id = requestUUID(r.RequestID) // normalize() already did this; belt and braces
	}
	c.requestID = append(c.requestID, id)
	c.createdAt = append(c.createdAt, r.CreatedAt)
	c.tenant = append(c.tenant, r.Tenant)
	c.userID = append(c.userID, r.UserID)
	c.sessionID = append(c.sessionID, r.SessionID)
	c.sessionPath = append(c.sessionPath, r.SessionPath)
	c.sessionName = append(c.sessionName, r.SessionName)
	c.reqName = append(c.reqName, r.RequestName)
	keys := make([]string, len(r.Properties))
	vals := make([]string, len(r.Properties))
	for i, p := range r.Properties {
		keys[i], vals[i] = p.Key, p.Value
	}
	c.propKeys = append(c.propKeys, keys)
	c.propValues = append(c.propValues, vals)
	c.provider = append(c.provider, r.Provider)
	c.model = append(c.model, r.Model)
	c.responseModel = append(c.responseModel, r.ResponseModel)
	c.method = append(c.method, r.Method)
	c.path = append(c.path, r.Path)
	c.targetURL = append(c.targetURL, r.TargetURL)
	c.status = append(c.status, r.Status)
	c.stream = append(c.stream, b2u(r.Stream))
	c.promptTok = append(c.promptTok, r.PromptTokens)
	c.completionTok = append(c.completionTok, r.CompletionTokens)
	c.cachedTok = append(c.cachedTok, r.CachedTokens)
	c.cacheWriteTok = append(c.cacheWriteTok, r.CacheWriteTokens)
	c.reasonTok = append(c.reasonTok, r.ReasoningTokens)
	c.cost = append(c.cost, r.CostUSD)
	c.latency = append(c.latency, r.LatencyMs)
	c.ttft = append(c.ttft, r.TTFTMs)
	c.cacheHit = append(c.cacheHit, b2u(r.CacheHit))
	c.cacheRef = append(c.cacheRef, r.CacheReferenceID)
	c.rateLimited = append(c.rateLimited, b2u(r.RateLimited))
	c.promptID = append(c.promptID, r.PromptID)
	c.promptVersion = append(c.promptVersion, r.PromptVersion)
	c.fallback = append(c.fallback, r.FallbackIndex)
	c.attempts = append(c.attempts, r.Attempts)
	c.retryPolicy = append(c.retryPolicy, r.RetryPolicy)
	c.wlNamespace = append(c.wlNamespace, r.WorkloadNamespace)
	c.wlServiceAccount = append(c.wlServiceAccount, r.WorkloadServiceAccount)
	c.wlName = append(c.wlName, r.WorkloadName)
	c.policyRule = append(c.policyRule, r.PolicyRule)
	c.policyDecision = append(c.policyDecision, r.PolicyDecision)
	c.reqBody = append(c.reqBody, r.RequestBody)
	c.respBody = append(c.respBody, r.ResponseBody)
	c.errText = append(c.errText, r.Error)
	c.modelOverride = append(c.modelOverride, r.ModelOverride)
	c.warnings = append(c.warnings, r.Warnings)
	c.proxyKeyID = append(c.proxyKeyID, r.ProxyKeyID)
	c.usageSource = append(c.usageSource, r.UsageSource)
	c.cacheSimilarity = append(c.cacheSimilarity, similarity(r.CacheSimilarity))
}

// similarity is a cache similarity as the column holds it: in [0, 1], NaN
// as 0, whatever a spooled or ingested record carried.
func similarity(f float32) float32 {
	if !(f > 0) {
		return 0
	}
	return min(f, 1)
}

// idNamespace derives stable UUIDs for request ids that are not UUIDs.
var idNamespace = uuid.MustParse("5b0c7a36-8d0e-4c51-9a57-6f3f4f1b2d10")

func requestUUID(id string) uuid.UUID { return uuid.NewSHA1(idNamespace, []byte(id)) }

// DateTime holds 1970-01-01 … 2106-02-07; keep a margin at the top.
var (
	minCreatedAt = time.Unix(0, 0)
	maxCreatedAt = time.Date(2105, 12, 31, 0, 0, 0, 0, time.UTC)
)

// normalize makes a record insertable, once, before it is first inserted
// or spooled, so every retry and replay carries identical values (and
// ReplacingMergeTree can collapse them):
//   - request_id must be a UUID: an empty one gets a new UUIDv7; any other
//     non-UUID string maps to a name-based UUID (stable across replays);
//   - created_at must fit DateTime: a zero or out-of-range time becomes now;
//     it is stored in UTC.
func normalize(r *record.Record, now time.Time) {
	if r.RequestID == "" {
		r.RequestID = record.NewID()
	} else if _, err := uuid.Parse(r.RequestID); err != nil {
		r.RequestID = requestUUID(r.RequestID).String()
	}
	if r.CreatedAt.Before(minCreatedAt) || r.CreatedAt.After(maxCreatedAt) {
		r.CreatedAt = now
	}
	r.CreatedAt = r.CreatedAt.UTC()
}
