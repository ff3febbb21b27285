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
//
// Supported Envoy versions: Envoy 1.36 and later (1.36 is the first with
// remove_on_match in the header mutation rules, which the bootstraps' early
// header mutation extension uses to drop x-tollgate-workload-* headers).
// The configurations are validated against the newest schema here and
// against Envoy 1.36's in envoy/oldest, a module of its own that `make
// test` runs. The manifests and the injector run one pinned image,
// inject.DefaultEnvoyImage (a test in k8s/ keeps them equal).
//
// examples/istio-envoyfilter.yaml attaches the processor to Istio sidecars
// for the providers' hosts only: the filter is inserted disabled on the
// outbound port-80 listener and enabled on the providers' virtual hosts,
// and the applications call the providers in plain HTTP while the sidecar
// originates TLS (ServiceEntry and DestinationRules in the same file).
package envoy
