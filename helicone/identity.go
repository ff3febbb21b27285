package helicone

import "github.com/tollgate-dev/tollgate/record"

// Identify copies the identity the Helicone-* headers declare into rec: the
// request id (a new one when none was sent), user, session, request name,
// model override and properties (sorted). A proxied call (processor) and a logged one (the
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
	rec.Properties = h.SortedProperties()
}
