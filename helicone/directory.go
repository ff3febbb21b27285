package helicone

import "strings"

// Directory is every request header of Helicone's header directory
// (docs.helicone.ai/helicone-headers/header-directory) and of its worker's
// header parser, canonically spelled, whether Tollgate acts on it yet or
// not, followed by the Helicone-* request headers only Tollgate reads.
// docs/headers.md has a row for each (a test checks), and the metrics label
// warnings by these names (WarningLabel). Helicone-Property-<Name> is one
// entry for all names.
var Directory = []string{
	"Helicone-Auth",
	"Helicone-Target-URL",
	"Helicone-OpenAI-Api-Base",
	"Helicone-Request-Id",
	"Helicone-Model-Override",
	"Helicone-User-Id",
	"Helicone-Property-<Name>",
	"Helicone-Session-Id",
	"Helicone-Session-Path",
	"Helicone-Session-Name",
	"Helicone-Omit-Request",
	"Helicone-Omit-Response",
	"Helicone-Cache-Enabled",
	"Helicone-Cache-Save",
	"Helicone-Cache-Read",
	"Helicone-Cache-Seed",
	"Helicone-Cache-Bucket-Max-Size",
	"Helicone-Cache-Ignore-Keys",
	"Helicone-RateLimit-Policy",
	"Helicone-Retry-Enabled",
	"Helicone-Retry-Num",
	"Helicone-Retry-Factor",
	"Helicone-Retry-Min-Timeout",
	"Helicone-Retry-Max-Timeout",
	"Helicone-Fallbacks",
	"Helicone-Prompt-Id",
	"Helicone-Prompt-Version",
	"Helicone-Moderations-Enabled",
	"Helicone-LLM-Security-Enabled",
	"Helicone-LLM-Security-Advanced",
	"Helicone-Stream-Force-Format",
	"Helicone-Stream-Usage",
	"Helicone-Token-Limit-Exception-Handler",
	"Helicone-Posthog-Key",
	"Helicone-Posthog-Host",
	"Helicone-Webhook-Enabled",

	// Tollgate's own.
	"Helicone-Request-Name",
	"Helicone-Fallback",
	"Helicone-Prompt-Variables",
}

// ResponseDirectory is every response header Tollgate sets under
// Helicone's names (Helicone-Warning is Tollgate's own).
var ResponseDirectory = []string{
	"Helicone-Id",
	"Helicone-Cache",
	"Helicone-Cache-Bucket-Idx",
	"Helicone-Cache-Latency",
	"Helicone-Fallback-Index",
	"Helicone-RateLimit-Limit",
	"Helicone-RateLimit-Remaining",
	"Helicone-RateLimit-Policy",
	"Helicone-RateLimit-Reset",
	"Helicone-Warning",
}

// known maps each Directory name, lowercased, to its spelling there.
var known = func() map[string]string {
	m := make(map[string]string, len(Directory))
	for _, name := range Directory {
		m[strings.ToLower(name)] = name
	}
	return m
}()

// Known returns header's Directory spelling ("Helicone-Property-<Name>" for
// any property), whatever its case, and whether it is there.
func Known(header string) (string, bool) {
	key := strings.ToLower(header)
	if strings.HasPrefix(key, PropertyPrefix) {
		key = PropertyPrefix + "<name>"
	}
	name, ok := known[key]
	return name, ok
}
