package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/tollgate-dev/tollgate/record"
)

// DefaultMaxBody is the largest body a payload carries, in bytes: Helicone's
// 10 KB. A larger one is replaced by tooLarge, as Helicone replaces it.
const DefaultMaxBody = 10 << 10

// tooLarge stands in for a body over the limit; the receiver reads the full
// call from the log by its request_id.
const tooLarge = "Body too large for the webhook; read the full request and response from Tollgate's log by request_id"

// call is what a delivery needs of a finished record, taken when the record
// is submitted: the sink that receives the record next owns it.
type call struct {
	requestID, userID string
	model, provider   string
	requestBody       string
	responseBody      string
	promptTokens      int64
	completionTokens  int64
	costUSD           float64
	latencyMs         int64
	requestTooLarge   bool
	responseTooLarge  bool
}

func newCall(r *record.Record, maxBody int) *call {
	c := &call{
		requestID: r.RequestID, userID: r.UserID,
		model: r.ResponseModel, provider: r.Provider,
		promptTokens: r.PromptTokens, completionTokens: r.CompletionTokens,
		costUSD: r.CostUSD, latencyMs: r.LatencyMs,
	}
	if c.model == "" {
		c.model = r.Model
	}
	// A body over the limit is not kept: the queue holds at most maxBody
	// of each.
	if len(r.RequestBody) > maxBody {
		c.requestTooLarge = true
	} else {
		c.requestBody = r.RequestBody
	}
	if len(r.ResponseBody) > maxBody {
		c.responseTooLarge = true
	} else {
		c.responseBody = r.ResponseBody
	}
	return c
}

// payload is the JSON body of a delivery, in the shape of Helicone's
// (valhalla/jawn/src/lib/clients/webhookSender.ts: the keys, their order,
// user_id only when there is one, model, provider and metadata only with
// includeData):
//
//	{"request_id": …, "request_body": …, "response_body": …, "user_id": …,
//	 "model": …, "provider": "OPENAI", "metadata": {"cost": …,
//	 "promptTokens": …, "completionTokens": …, "totalTokens": …, "latencyMs": …}}
//
// A body that is a JSON object or array is embedded as JSON (Helicone sends
// the parsed body); any other body is a string. There is no
// request_response_url: Tollgate keeps no presigned copy of the bodies.
func (c *call) payload(includeData, includeBodies bool) []byte {
	b := make([]byte, 0, 256+len(c.requestBody)+len(c.responseBody))
	b = append(b, `{"request_id":`...)
	b = appendJSString(b, c.requestID)
	b = append(b, `,"request_body":`...)
	b = appendBody(b, c.requestBody, c.requestTooLarge, includeBodies)
	b = append(b, `,"response_body":`...)
	b = appendBody(b, c.responseBody, c.responseTooLarge, includeBodies)
	if c.userID != "" {
		b = append(b, `,"user_id":`...)
		b = appendJSString(b, c.userID)
	}
	if includeData && c.model != "" {
		b = append(b, `,"model":`...)
		b = appendJSString(b, c.model)
		if c.provider != "" {
			// Helicone names providers in capitals (OPENAI, ANTHROPIC).
			b = append(b, `,"provider":`...)
			b = appendJSString(b, strings.ToUpper(c.provider))
		}
		b = append(b, `,"metadata":{"cost":`...)
		b = appendJSNumber(b, c.costUSD)
		b = append(b, `,"promptTokens":`...)
		b = appendJSNumber(b, float64(c.promptTokens))
		b = append(b, `,"completionTokens":`...)
		b = appendJSNumber(b, float64(c.completionTokens))
		b = append(b, `,"totalTokens":`...)
		b = appendJSNumber(b, float64(c.promptTokens+c.completionTokens))
		b = append(b, `,"latencyMs":`...)
		b = appendJSNumber(b, float64(c.latencyMs))
		b = append(b, '}')
	}
	return append(b, '}')
}

func appendBody(b []byte, body string, large, include bool) []byte {
	switch {
	case !include:
		return appendJSString(b, "")
	case large:
		return appendJSString(b, tooLarge)
	}
	if out, err := appendJSJSON(b, body); err == nil {
		return out
	}
	return appendJSString(b, body)
}

// sign is the Helicone-Signature of body: the lowercase hex HMAC-SHA256 of
// the body under the destination's secret, without a prefix.
func sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}
