// Package envoy holds the Envoy configurations users deploy in front of
// Tollgate: sidecar.yaml (one workload) and gateway.yaml (a shared egress
// gateway), embedded for the code that writes them out, such as the sidecar
// injector. examples/ shows how to attach Tollgate to an Envoy that another
// control plane (Envoy Gateway, Istio) manages.
//
// Its tests load every configuration into Envoy's protobuf schema and run
// Envoy's generated validation on it, then check the properties the
// processor relies on, so a typo or a broken contract fails the build
// instead of an Envoy start-up.
package envoy
