// Package envoy holds the Envoy configurations users deploy in front of
// Tollgate (sidecar.yaml, and any other *.yaml added here). It has no Go
// code of its own: its tests load every configuration into Envoy's
// protobuf schema and run Envoy's generated validation on it, so a typo or
// a wrong field fails the build instead of an Envoy start-up.
package envoy
