package inject

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Users the sidecars run as: the ones their images are built for, set
// explicitly because runAsNonRoot cannot check a user given by name.
const (
	processorUID int64 = 65532
	envoyUID     int64 = 101
	// processorGID is the processor's group, and Envoy's: the ext_proc
	// socket is mode 0660 (owner and group), so Envoy connects as a member
	// of the group and nothing else may, whatever the volume's mounts.
	processorGID int64 = 65532
)

// sidecars is what one injection adds to a pod.
type sidecars struct {
	// initContainers in start order: the bootstrap writes Envoy's
	// configuration and exits; then tollgate and envoy start as native
	// sidecars, each only after the one before reports started.
	initContainers []corev1.Container
	volumes        []corev1.Volume
}

func newSidecars(w Workload, cfg Config) sidecars {
	return sidecars{
		initContainers: []corev1.Container{bootstrapContainer(cfg), processorContainer(w, cfg), envoyContainer(cfg)},
		volumes: []corev1.Volume{
			{Name: envoyConfigVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: dataVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			// The ext_proc socket, mounted into the two sidecars only (never
			// into an application container).
			{Name: ExtProcVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			// Envoy's admin socket, mounted into envoy only.
			{Name: EnvoyAdminVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: podInfoVolume, VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
				Items: []corev1.DownwardAPIVolumeFile{{Path: "labels", FieldRef: fieldRef("metadata.labels")}},
			}}},
		},
	}
}

// hash names this injection: the same configuration and workload give the
// same value on every run.
func (s sidecars) hash() string {
	b, err := json.Marshal(struct {
		Init    []corev1.Container `json:"initContainers"`
		Volumes []corev1.Volume    `json:"volumes"`
		AppEnv  []corev1.EnvVar    `json:"appEnv"`
	}{s.initContainers, s.volumes, baseURLEnv()})
	if err != nil {
		panic(err) // plain structs always encode
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// bootstrapContainer writes the Envoy bootstrap (envoy/sidecar.yaml, built
// into the binary) into the shared emptyDir. It runs the tollgate image, so
// the configuration always matches the processor it talks to, and no
// ConfigMap has to exist in every injected namespace.
func bootstrapContainer(cfg Config) corev1.Container {
	return corev1.Container{
		Name:            BootstrapContainer,
		Image:           cfg.image(),
		ImagePullPolicy: cfg.ImagePullPolicy,
		Args:            []string{"bootstrap", "--out", EnvoyConfigPath},
		Resources:       resources("10m", "16Mi", "64Mi"),
		SecurityContext: hardened(processorUID, processorGID),
		VolumeMounts:    []corev1.VolumeMount{{Name: envoyConfigVolume, MountPath: envoyConfigDir}},
	}
}

func processorContainer(w Workload, cfg Config) corev1.Container {
	args := []string{"serve",
		// A Unix socket in a volume only Envoy shares: a loopback port
		// would let the application pose as Envoy.
		"--grpc-listen", ExtProcAddress,
		"--http-listen", fmt.Sprintf(":%d", ProcessorHTTPPort),
		"--data-dir", dataDir,
		// Alert rules are evaluated by the gateway or one chosen
		// deployment, not by every pod of the mesh.
		"--alerts=false",
		// Health and metrics only on the HTTP port: the application shares
		// this loopback and must not read or write the logs, prompts and
		// alerts of every tenant through it (DESIGN.md section 2, Roles).
		"--role=sidecar",
	}
	return corev1.Container{
		Name:            ProcessorContainer,
		Image:           cfg.image(),
		ImagePullPolicy: cfg.ImagePullPolicy,
		Args:            append(args, cfg.Args...),
		Env:             processorEnv(w, cfg),
		Ports:           []corev1.ContainerPort{{Name: "tollgate-http", ContainerPort: ProcessorHTTPPort, Protocol: corev1.ProtocolTCP}},
		RestartPolicy:   ptr(corev1.ContainerRestartPolicyAlways),
		StartupProbe:    httpProbe("/readyz", ProcessorHTTPPort, 1, 120),
		ReadinessProbe:  httpProbe("/readyz", ProcessorHTTPPort, 5, 3),
		LivenessProbe:   httpProbe("/healthz", ProcessorHTTPPort, 10, 3),
		Resources:       cfg.processorResources(),
		SecurityContext: hardened(processorUID, processorGID),
		VolumeMounts: []corev1.VolumeMount{
			{Name: podInfoVolume, MountPath: podInfoDir, ReadOnly: true},
			// --data-dir: the disk spool for log records ClickHouse could
			// not take yet (the root filesystem is read-only).
			{Name: dataVolume, MountPath: dataDir},
			// --grpc-listen: the ext_proc socket.
			{Name: ExtProcVolume, MountPath: ExtProcDir},
		},
	}
}

// processorEnv is the workload's identity, the stores, then the
// configuration's own variables, which replace ours by name.
func processorEnv(w Workload, cfg Config) []corev1.EnvVar {
	env := []corev1.EnvVar{
		{Name: EnvWorkloadNamespace, ValueFrom: &corev1.EnvVarSource{FieldRef: fieldRef("metadata.namespace")}},
		{Name: EnvWorkloadServiceAccount, ValueFrom: &corev1.EnvVarSource{FieldRef: fieldRef("spec.serviceAccountName")}},
	}
	if w.Name != "" {
		env = append(env, corev1.EnvVar{Name: EnvWorkloadName, Value: w.Name})
	}
	env = append(env, corev1.EnvVar{Name: EnvWorkloadLabelsFile, Value: LabelsFile})
	if cfg.Redis != "" {
		env = append(env, corev1.EnvVar{Name: "TOLLGATE_REDIS", Value: cfg.Redis})
	}
	if cfg.ClickHouse != "" {
		env = append(env, corev1.EnvVar{Name: "TOLLGATE_CLICKHOUSE", Value: cfg.ClickHouse})
	}
	for _, extra := range cfg.Env {
		if i := envIndex(env, extra.Name); i >= 0 {
			env[i] = *extra.DeepCopy()
		} else {
			env = append(env, *extra.DeepCopy())
		}
	}
	return env
}

func envoyContainer(cfg Config) corev1.Container {
	return corev1.Container{
		Name:            EnvoyContainer,
		Image:           cfg.envoyImage(),
		ImagePullPolicy: cfg.ImagePullPolicy,
		// No command: the official images' entrypoints run envoy with these
		// flags. Nothing restarts Envoy in place, so no hot restart.
		Args:          []string{"-c", EnvoyConfigPath, "--disable-hot-restart"},
		Ports:         []corev1.ContainerPort{{Name: "envoy-ops", ContainerPort: EnvoyOpsPort, Protocol: corev1.ProtocolTCP}},
		RestartPolicy: ptr(corev1.ContainerRestartPolicyAlways),
		// Started means listening: the application containers start only
		// after it, so their first call already goes through Envoy.
		StartupProbe:   httpProbe("/ready", EnvoyOpsPort, 1, 120),
		ReadinessProbe: httpProbe("/ready", EnvoyOpsPort, 5, 3),
		Resources:      cfg.envoyResources(),
		// The processor's group: the ext_proc socket is 0660.
		SecurityContext: hardened(envoyUID, processorGID),
		VolumeMounts: []corev1.VolumeMount{
			{Name: envoyConfigVolume, MountPath: envoyConfigDir, ReadOnly: true},
			// Connecting to a socket needs no write access to its directory.
			{Name: ExtProcVolume, MountPath: ExtProcDir, ReadOnly: true},
			// Envoy binds its admin socket (mode 0600) in here; no other
			// container mounts it.
			{Name: EnvoyAdminVolume, MountPath: EnvoyAdminDir},
		},
	}
}

// baseURLEnv points the OpenAI and Anthropic SDKs at Envoy (the OpenAI
// SDKs want the /v1 in the base URL, the Anthropic ones add it).
func baseURLEnv() []corev1.EnvVar {
	origin := fmt.Sprintf("http://127.0.0.1:%d", ListenerPort)
	return []corev1.EnvVar{
		{Name: "OPENAI_BASE_URL", Value: origin + "/v1"},
		{Name: "ANTHROPIC_BASE_URL", Value: origin},
	}
}

// hardened passes the "restricted" Pod Security Standard.
func hardened(uid, gid int64) *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot:             ptr(true),
		RunAsUser:                ptr(uid),
		RunAsGroup:               ptr(gid),
		ReadOnlyRootFilesystem:   ptr(true),
		AllowPrivilegeEscalation: ptr(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// httpProbe spells out the fields the API server would default, so a
// manifest read back from the cluster equals the one written.
func httpProbe(path string, port int32, period, failures int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: path, Port: intstr.FromInt32(port), Scheme: corev1.URISchemeHTTP,
		}},
		PeriodSeconds:    period,
		FailureThreshold: failures,
		TimeoutSeconds:   1,
		SuccessThreshold: 1,
	}
}

func fieldRef(path string) *corev1.ObjectFieldSelector {
	return &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path}
}

func envIndex(env []corev1.EnvVar, name string) int {
	for i := range env {
		if env[i].Name == name {
			return i
		}
	}
	return -1
}

func ptr[T any](v T) *T { return &v }
