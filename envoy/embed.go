package envoy

import _ "embed"

// Sidecar is the bootstrap for an Envoy beside one workload (sidecar.yaml):
// the injector writes it into each pod it changes.
//
//go:embed sidecar.yaml
var Sidecar []byte

// Gateway is the bootstrap for the shared egress gateway (gateway.yaml).
//
//go:embed gateway.yaml
var Gateway []byte
