package helicone

// BadHeaderError is an unusable Helicone header: answer 400 with Error().
// The policies that read Helicone's headers (cache, rate limits, retries,
// fallbacks, prompts) all report a bad value with it, so the processor
// has one error to turn into a 400.
type BadHeaderError struct {
	Header string // canonical name, e.g. Helicone-RateLimit-Policy
	Reason string
}

func (e *BadHeaderError) Error() string { return e.Header + " " + e.Reason }

// Status is the HTTP status to answer with.
func (e *BadHeaderError) Status() int { return 400 }
