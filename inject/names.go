package inject

// The names below are a contract with users (annotations, labels), with the
// processor (environment, files) and with envoy/sidecar.yaml (addresses).

// Annotations and labels read and written on pod templates and pods.
const (
	// KeyInject, as a pod annotation: "false" (or "disabled") opts the pod
	// out, whatever else says; "enabled" (or "true") opts it in. As a
	// namespace or pod label: "enabled" opts in.
	KeyInject = "tollgate.io/inject"
	// AnnotationStatus marks an injected pod template or pod.
	AnnotationStatus = "tollgate.io/status"
	// AnnotationTemplateHash identifies what was injected (container specs,
	// volumes), so a changed configuration is visible on the workload.
	AnnotationTemplateHash = "tollgate.io/template-hash"
	// AnnotationKeepBaseURLs "true" leaves OPENAI_BASE_URL and
	// ANTHROPIC_BASE_URL of the application containers alone.
	AnnotationKeepBaseURLs = "tollgate.io/keep-base-urls"
	// AnnotationWorkloadName overrides the workload name computed at
	// injection (for pods of controllers the webhook cannot recognise).
	AnnotationWorkloadName = "tollgate.io/workload-name"

	StatusInjected = "injected"
)

// Environment of the tollgate container: the identity of the workload it
// serves, for the processor to log and apply policy by.
const (
	EnvWorkloadNamespace      = "TOLLGATE_WORKLOAD_NAMESPACE"
	EnvWorkloadServiceAccount = "TOLLGATE_WORKLOAD_SERVICE_ACCOUNT"
	EnvWorkloadName           = "TOLLGATE_WORKLOAD_NAME"
	// EnvWorkloadLabelsFile names a file of the pod's labels, one
	// key="value" a line (the downward API format), kept current by the
	// kubelet when labels change.
	EnvWorkloadLabelsFile = "TOLLGATE_WORKLOAD_LABELS_FILE"
)

// Containers and volumes added to the pod.
const (
	BootstrapContainer = "tollgate-bootstrap"
	ProcessorContainer = "tollgate"
	EnvoyContainer     = "envoy"

	envoyConfigVolume = "tollgate-envoy-config"
	podInfoVolume     = "tollgate-podinfo"
	dataVolume        = "tollgate-data"
	// ExtProcVolume holds the processor's ext_proc socket. It is mounted
	// into the tollgate and envoy containers only: an application
	// container, sharing the pod's loopback but not this directory, has no
	// way to open an ext_proc stream and pose as Envoy.
	ExtProcVolume = "tollgate-extproc"
	// EnvoyAdminVolume holds Envoy's admin socket. It is mounted into the
	// envoy container only: the admin API can stop, drain and reconfigure
	// Envoy (/quitquitquit, /drain_listeners, /runtime_modify) and dump its
	// configuration, so no other container of the pod may reach it.
	EnvoyAdminVolume = "tollgate-envoy-admin"
)

// Paths inside the sidecars.
const (
	envoyConfigDir = "/etc/tollgate/envoy"
	// EnvoyConfigPath is where tollgate-bootstrap writes the Envoy bootstrap.
	EnvoyConfigPath = envoyConfigDir + "/envoy.yaml"
	podInfoDir      = "/etc/tollgate/podinfo"
	// LabelsFile is the value of TOLLGATE_WORKLOAD_LABELS_FILE.
	LabelsFile = podInfoDir + "/labels"
	dataDir    = "/var/lib/tollgate"
	// ExtProcDir is where ExtProcVolume is mounted, in both sidecars.
	ExtProcDir = "/var/run/tollgate"
	// ExtProcSocket is the processor's ext_proc socket: envoy/sidecar.yaml's
	// tollgate cluster connects to this pipe (a test checks).
	ExtProcSocket = ExtProcDir + "/ext_proc.sock"
	// EnvoyAdminDir is where EnvoyAdminVolume is mounted, in envoy.
	EnvoyAdminDir = "/var/run/envoy"
	// EnvoyAdminSocket is Envoy's admin API: envoy/sidecar.yaml's admin
	// address and its envoy_admin cluster (a test checks). A Unix socket,
	// not a loopback port, which every container of the pod could reach.
	EnvoyAdminSocket = EnvoyAdminDir + "/admin.sock"
)

// Addresses. The Envoy ones must match envoy/sidecar.yaml (a test checks).
const (
	// ExtProcAddress is the processor's --grpc-listen: a Unix socket, not a
	// loopback port, which every container of the pod could reach.
	ExtProcAddress = "unix://" + ExtProcSocket
	// ListenerPort is Envoy's egress listener on 127.0.0.1.
	ListenerPort = 10000
	// ProcessorHTTPPort serves /healthz, /readyz and /metrics, nothing
	// else (--role=sidecar). It listens on every interface because the
	// kubelet probes the pod IP, never the pod's loopback.
	ProcessorHTTPPort = 15080
	// EnvoyOpsPort is the sidecar bootstrap's "ops" listener on the pod IP:
	// GET /ready and /stats/prometheus from Envoy's admin, which itself
	// has no port (EnvoyAdminSocket).
	EnvoyOpsPort = 9902
)
