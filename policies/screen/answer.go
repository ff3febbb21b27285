package screen

import "encoding/json"

// heliconeError is the body of Helicone's answers to a screened call,
// {"success": false, "error": {"code", "message", "details"}}, fields in
// that order.
type heliconeError struct {
	Success bool `json:"success"`
	Error   struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Details string `json:"details,omitempty"`
	} `json:"error"`
}

func heliconeBody(code, message, details string) []byte {
	var e heliconeError
	e.Error.Code, e.Error.Message, e.Error.Details = code, message, details
	b, _ := json.Marshal(e) // strings only: cannot fail
	return b
}

// details points at the call's record. Helicone's points at its request
// page (https://www.helicone.ai/requests?<id>), which a gateway of one's
// own does not have.
func details(requestID string) string {
	return "See the log record of request " + requestID + " (Helicone-Id) for more info."
}

// Helicone's codes and messages (worker/src/lib/HeliconeProxyRequest/
// ProxyForwarder.ts and managers/ModerationManager.ts).
const (
	codeThreat            = "PROMPT_THREAT_DETECTED"
	messageThreat         = "Prompt threat detected. Your request cannot be processed."
	codeFlagged           = "PROMPT_FLAGGED_FOR_MODERATION"
	messageFlagged        = "The given prompt was flagged by the OpenAI Moderation endpoint."
	codeModerationFailed  = "INTERNAL_SERVER_ERROR"
	messageModerationFail = "Request to OpenAI moderation endpoint failed."
)

// threatBlock is Helicone's 400 for a prompt the classifier flags.
func threatBlock(requestID string) *Block {
	return &Block{
		Status: 400,
		Code:   "prompt_threat_detected",
		Body:   heliconeBody(codeThreat, messageThreat, details(requestID)),
		Reason: codeThreat + ": " + messageThreat,
	}
}

// moderationBlock answers a call by its moderation result: Helicone's 400
// for a flagged prompt, its 500 when the moderation call failed (Helicone
// does not forward a call it could not moderate), nil otherwise.
func moderationBlock(r Result, requestID string) *Block {
	switch r.Outcome {
	case Flagged:
		return &Block{
			Status: 400,
			Code:   "prompt_flagged_for_moderation",
			Body:   heliconeBody(codeFlagged, messageFlagged, details(requestID)),
			Reason: codeFlagged + ": " + messageFlagged + " (" + r.Detail + ")",
		}
	case Failed, Timeout, Busy:
		return &Block{
			Status: 500,
			Code:   "moderation_failed",
			Body:   heliconeBody(codeModerationFailed, messageModerationFail, ""),
			Reason: "moderation " + string(r.Outcome) + ": " + r.Detail,
		}
	}
	return nil
}
