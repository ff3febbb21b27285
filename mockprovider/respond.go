package mockprovider

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"
)

// writeJSON sends a complete JSON answer. With x-mock-disconnect-after the
// connection is reset instead, before anything is written, which is how a
// non-streaming call loses its upstream.
func (c *call) writeJSON(v any) {
	if c.plan.disconnect >= 0 {
		abortConnection(c.w)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own types are marshalled; failing here is a bug in the mock.
		panic("mockprovider: marshal: " + err.Error())
	}
	h := c.w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	c.w.WriteHeader(http.StatusOK)
	_, _ = c.w.Write(b)
}

// abortConnection drops the client's TCP connection with a reset (linger
// 0), the abrupt failure a dying upstream produces. On a transport that
// cannot be hijacked (HTTP/2) it resets the stream instead.
func abortConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

type openAIError struct {
	Error openAIErrorBody `json:"error"`
}

type openAIErrorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

type anthropicError struct {
	Type  string             `json:"type"`
	Error anthropicErrorBody `json:"error"`
}

type anthropicErrorBody struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// writeError answers with the provider's error shape. retryAfter "" means
// the default: "1" on a 429, nothing otherwise.
func writeError(w http.ResponseWriter, p provider, retryAfter string, status int, msg string) {
	if retryAfter == "" && status == http.StatusTooManyRequests {
		retryAfter = "1"
	}
	if retryAfter != "" {
		w.Header().Set("retry-after", retryAfter)
	}
	var v any
	switch p {
	case anthropic:
		v = anthropicError{Type: "error", Error: anthropicErrorBody{Type: anthropicErrorType(status), Message: msg}}
	case gemini:
		v = geminiError{Error: geminiErrorBody{Code: status, Message: msg, Status: geminiStatus(status)}}
	default:
		typ, code := openAIErrorType(status)
		v = openAIError{Error: openAIErrorBody{Message: msg, Type: typ, Code: code}}
	}
	b, _ := json.Marshal(v)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func openAIErrorType(status int) (typ string, code *string) {
	str := func(s string) *string { return &s }
	switch {
	case status == http.StatusUnauthorized:
		return "invalid_request_error", str("invalid_api_key")
	case status == http.StatusTooManyRequests:
		return "requests", str("rate_limit_exceeded")
	case status >= 500:
		return "server_error", nil
	}
	return "invalid_request_error", nil
}

func anthropicErrorType(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case 529:
		return "overloaded_error"
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}

func badJSONMessage(p provider) string {
	if p == anthropic {
		return "There was an error parsing the body of your request: expected a JSON object"
	}
	return "We could not parse the JSON body of your request. The request body must be a JSON object."
}
