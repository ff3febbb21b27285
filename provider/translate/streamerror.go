package translate

import "encoding/json"

// BrokenStreamEvent is the last event of a client's stream whose upstream
// broke (it ended before its terminal event, or sent what does not
// translate): an error in the client's own streaming format, so its SDK
// raises an error rather than returning a silently cut answer. format is
// the client's provider (provider.OpenAI or provider.Anthropic):
//
//   - OpenAI: `data: {"error":{"message":…,"type":"server_error",…}}`, the
//     chunk OpenAI sends when a stream fails (its SDKs raise an APIError on
//     it); no `[DONE]` follows.
//   - Anthropic: `event: error` with
//     `{"type":"error","error":{"type":"api_error","message":…}}`, as the
//     Messages API streams an error.
func BrokenStreamEvent(format, message string) []byte {
	if format == "anthropic" {
		b, _ := json.Marshal(anError{Type: "error", Error: anErrorBody{Type: "api_error", Message: message}})
		return append(append([]byte("event: error\ndata: "), b...), "\n\n"...)
	}
	code := "upstream_stream_broken"
	b, _ := json.Marshal(oaError{Error: oaErrorBody{Message: message, Type: "server_error", Code: &code}})
	return append(append([]byte("data: "), b...), "\n\n"...)
}
