// Package fault holds Tollgate's fault suite: Go tests that run `tollgate
// dev` against real Redis and ClickHouse, break something on purpose (kill
// the process with SIGKILL, kill ClickHouse or Redis, damage a spool file,
// hang up on a stream) and count exactly what was answered and what was
// logged. Under `go test` (so `make test`) the bursts are short; `make
// fault` runs the same scenarios at scale (TOLLGATE_FAULT_SCALE=large) and
// prints a table of the figures. docs/reliability.md explains the
// guarantees the scenarios check.
//
// The package has no code outside its tests: the harness is in the
// _test.go files.
package fault
