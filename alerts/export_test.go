package alerts

// TestHooks are called by a Manager at points of the races between
// replicas, so that tests can line replicas up: after Create reads whether
// the id is taken (before writing), after it writes a rule row
// (before reading it back), before it writes its claims, and after (before
// reading them back).
type TestHooks struct {
	AfterRuleRead, AfterRulePut, BeforeClaim, AfterClaim func()
}

// SetTestHooks sets m's hooks; call it before using m.
func SetTestHooks(m *Manager, h TestHooks) {
	m.afterRuleRead, m.afterRulePut, m.beforeClaim, m.afterClaim = h.AfterRuleRead, h.AfterRulePut, h.BeforeClaim, h.AfterClaim
}
