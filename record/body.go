package record

// DefaultMaxBody is the default of --max-logged-body: the bytes of each
// request and response body a record keeps.
const DefaultMaxBody = 1 << 20

// CapBody is a body as the log keeps it: its first max bytes. The processor
// and the ingest API both cut bodies here, so a call logged out of band is
// stored exactly as a proxied one.
func CapBody[B ~string | ~[]byte](body B, max int) string {
	if len(body) > max {
		body = body[:max]
	}
	return string(body)
}
