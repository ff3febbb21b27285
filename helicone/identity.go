package helicone

import "github.com/tollgate-dev/tollgate/record"

// Identify copies the identity the Helicone-* headers declare into rec: the
// request id (a new one when none was sent), user, session, request name,
// model override, properties (sorted) and the warnings so far. A proxied call (processor) and a logged one (the
// ingest API) are recorded alike because both come through here.
func (h *Headers) Identify(rec *record.Record) {
	rec.RequestID = h.RequestID
	if rec.RequestID == "" {
		rec.RequestID = record.NewID()
	}
	rec.UserID = h.UserID
	rec.SessionID, rec.SessionPath, rec.SessionName = h.SessionID, h.SessionPath, h.SessionName
	rec.RequestName = h.RequestName
	rec.ModelOverride = h.ModelOverride
	rec.Warnings = h.Warnings.Value() // the processor's policies may add more (processor/warnings.go)
	rec.Properties = h.SortedProperties()
}
