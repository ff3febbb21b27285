package memstore

import (
	"testing"

	"github.com/tollgate-dev/tollgate/policies/gate"
	gatestoretest "github.com/tollgate-dev/tollgate/policies/gate/storetest"
	"github.com/tollgate-dev/tollgate/policies/prompt"
	promptstoretest "github.com/tollgate-dev/tollgate/policies/prompt/storetest"
)

// The conformance suites of the policy packages whose stores this package
// implements; storage/redisstore runs the same ones.

func TestStoreConformance(t *testing.T) {
	gatestoretest.Run(t, func(testing.TB) gate.Store { return New(Options{}) })
}

func TestPromptStoreConformance(t *testing.T) {
	promptstoretest.Run(t, func(*testing.T) prompt.Store { return NewPromptStore(PromptOptions{}) })
}
