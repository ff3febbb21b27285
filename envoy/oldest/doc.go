// Package oldest checks Tollgate's Envoy configurations against the schema
// of the oldest Envoy release Tollgate supports, 1.36: the first whose
// header mutation rules (config.common.mutation_rules.v3.HeaderMutation)
// have remove_on_match, which the bootstraps' early header mutation
// extension (envoy.http.early_header_mutation.header_mutation) uses to drop
// every x-tollgate-workload-* header before routing. Envoy 1.35's schema
// has the extension but not remove_on_match.
//
// It is a module of its own so that it can pin go-control-plane's envoy
// module to the version that matches Envoy 1.36 while the main module uses
// the newest; `make test` runs it (cd envoy/oldest && go test ./...). The
// configurations are read from the parent folders by relative path, so
// there is nothing to keep in sync by hand: every bootstrap in envoy/, the
// gateway's copy in k8s/gateway/ and every Envoy message in the EnvoyFilter
// patches of envoy/examples/ must load into the old schema and pass its
// generated validation, exactly as the main module's envoy tests do against
// the newest. A field that only newer Envoys know fails here.
package oldest
