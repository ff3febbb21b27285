package alerts

// TestHooks are called by a Manager at points of the races between
// replicas, so that tests can line replicas up: after it writes a rule row
// (before reading it back), before it writes its claims, and after (before
// reading them back).
type TestHooks struct {
	AfterRulePut, BeforeClaim, AfterClaim func()
}

// SetTestHooks sets m's hooks; call it before using m.
func SetTestHooks(m *Manager, h TestHooks) {
	m.afterRulePut, m.beforeClaim, m.afterClaim = h.AfterRulePut, h.BeforeClaim, h.AfterClaim
}
