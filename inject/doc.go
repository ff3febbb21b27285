// Package inject adds Tollgate to Kubernetes workloads, in the manner of
// Istio's sidecar injection: `tollgate inject` rewrites manifests, and
// `tollgate webhook` is a mutating admission webhook doing the same to pods
// as they are created. Both go through Pod, and both apply the same JSON
// Patch (Patch), so a manifest injected ahead of time and a pod injected at
// admission come out alike.
//
// An injected pod gets, in initContainers and before the application's own:
//
//	tollgate-bootstrap  writes envoy/sidecar.yaml to an emptyDir, then exits
//	tollgate            `tollgate serve --role=sidecar`, ext_proc on the Unix socket
//	                    /var/run/tollgate/ext_proc.sock (native sidecar); its HTTP
//	                    port serves /healthz, /readyz and /metrics only
//	envoy               listener 127.0.0.1:10000 (native sidecar), admin API on
//	                    the Unix socket /var/run/envoy/admin.sock
//
// The socket's emptyDir (tollgate-extproc) is mounted into tollgate and
// envoy only, never into an application container: the application shares
// the pod's loopback, and an ext_proc port there would let it pose as Envoy
// (forge log records, drive rate limits and the cache). Envoy's admin
// socket is in an emptyDir of its own (tollgate-envoy-admin), mounted into
// envoy only: on loopback, the application could stop, drain or
// reconfigure Envoy through it.
//
// On a cluster without native sidecars the webhook refuses the pods that
// ask for injection rather than admit them without Tollgate.
//
// Native sidecars (init containers with restartPolicy: Always, Kubernetes
// 1.29 and later; see CheckKubernetesVersion) start in that order, each after the previous one's
// startup probe passed, and stop after the application: its first call and
// its last both find Envoy and the processor up, and a Job still completes.
// Each application container gets OPENAI_BASE_URL and ANTHROPIC_BASE_URL
// pointing at Envoy. The processor learns whom it serves from its
// environment (TOLLGATE_WORKLOAD_*) and a downward-API file of the pod's
// labels; see names.go for the contract.
package inject
