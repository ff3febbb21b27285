package inject

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// maxReviewBytes bounds a request body: the API server caps an object near
// 1.5 MiB, and a pod CREATE review carries one.
const maxReviewBytes = 4 << 20

// NewWebhook serves the mutating admission webhook:
//
//	POST /inject[/namespace|/pod]  an admission.k8s.io/v1 AdmissionReview of a pod CREATE
//	GET  /healthz                  liveness
//
// The MutatingWebhookConfiguration says why it sends a pod by the path it
// calls: /inject/namespace from the webhook selecting namespaces labelled
// tollgate.io/inject=enabled, /inject/pod from the one selecting pods so
// labelled. (A query such as ?via=namespace means the same, but the API
// server accepts neither a query nor "=" in a webhook's service path.) A
// pod reaching plain /inject is injected only if it carries the
// tollgate.io/inject label or annotation itself; the opt-out annotation
// wins in every case. The answer allows the pod, with a JSON Patch when it
// injected. A pod that cannot be injected as asked (names taken, half
// injected, a cluster without native sidecars) is refused with the reason,
// so the mistake shows at once instead of a pod running unobserved.
func NewWebhook(cfg Config, log *slog.Logger) (http.Handler, error) {
	return NewWebhookWithMetrics(cfg, log, nil)
}

// NewWebhookWithMetrics is NewWebhook counting its decisions in
// tollgate_injector_admissions_total{result}, registered with reg.
func NewWebhookWithMetrics(cfg Config, log *slog.Logger, reg prometheus.Registerer) (http.Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	wh := &webhook{cfg: cfg, log: log, decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tollgate_injector_admissions_total",
		Help: "Pod creations the injector answered, by result: injected, not_requested, skipped (opted out, already injected, host network), refused (cannot be injected as asked), unsupported_cluster (refused: the cluster has no native sidecars).",
	}, []string{"result"})}
	for _, r := range []string{resultInjected, resultNotRequested, resultSkipped, resultRefused, resultUnsupported} {
		wh.decisions.WithLabelValues(r) // every series from the start, for rate() and alerts
	}
	if reg != nil {
		if err := reg.Register(wh.decisions); err != nil {
			return nil, err
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /inject", wh.serveInject)
	mux.HandleFunc("POST /inject/{via}", wh.serveInject)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	return mux, nil
}

type webhook struct {
	cfg       Config
	log       *slog.Logger
	decisions *prometheus.CounterVec
}

const (
	resultInjected     = "injected"
	resultNotRequested = "not_requested"
	resultSkipped      = "skipped"
	resultRefused      = "refused"
	resultUnsupported  = "unsupported_cluster"
)

func (wh *webhook) serveInject(w http.ResponseWriter, r *http.Request) {
	selected, err := selectedBy(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxReviewBytes))
	if err != nil {
		status := http.StatusBadRequest
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			status = http.StatusRequestEntityTooLarge
		}
		http.Error(w, "reading the AdmissionReview: "+err.Error(), status)
		return
	}
	req, err := parseReview(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	resp, err := wh.review(req, selected)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	resp.UID = req.UID
	out, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
		Response: resp,
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

// selectedBy reports whether the webhook configuration sent the pod
// because of a label (/inject/namespace, /inject/pod, or ?via=…).
func selectedBy(r *http.Request) (bool, error) {
	via, query := r.PathValue("via"), r.URL.Query().Get("via")
	if via == "" {
		via = query
	} else if query != "" && query != via {
		return false, fmt.Errorf("path and query disagree: %s, ?via=%s", via, query)
	}
	switch via {
	case "":
		return false, nil
	case "namespace", "pod":
		return true, nil
	}
	return false, fmt.Errorf("%q: want /inject/namespace, /inject/pod or /inject", via)
}

// parseReview accepts only what the API server sends for
// admissionReviewVersions: [v1]: answering another version would be
// rejected by it anyway.
func parseReview(body []byte) (*admissionv1.AdmissionRequest, error) {
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		return nil, fmt.Errorf("malformed AdmissionReview: %w", err)
	}
	if review.APIVersion != admissionv1.SchemeGroupVersion.String() || review.Kind != "AdmissionReview" {
		return nil, fmt.Errorf("want an admission.k8s.io/v1 AdmissionReview, got apiVersion %q kind %q", review.APIVersion, review.Kind)
	}
	if review.Request == nil {
		return nil, errors.New("malformed AdmissionReview: no request")
	}
	if review.Request.UID == "" {
		return nil, errors.New("malformed AdmissionReview: request has no uid")
	}
	return review.Request, nil
}

// review decides for one request. selected: the webhook configuration
// sent the pod because of its namespace's or its own label. An error means
// the review itself is malformed.
func (wh *webhook) review(req *admissionv1.AdmissionRequest, selected bool) (*admissionv1.AdmissionResponse, error) {
	allow := &admissionv1.AdmissionResponse{Allowed: true}
	isPod := req.Kind.Group == "" && req.Kind.Kind == "Pod" && req.SubResource == ""
	if !isPod || req.Operation != admissionv1.Create {
		return allow, nil
	}
	if len(req.Object.Raw) == 0 {
		return nil, errors.New("malformed AdmissionReview: pod CREATE without an object")
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return nil, fmt.Errorf("malformed AdmissionReview: the object is not a pod: %w", err)
	}
	w := WorkloadOf(&pod)
	log := wh.log.With("namespace", req.Namespace, "workload", w.Kind+"/"+w.Name, "uid", req.UID)
	if !Requested(&pod.ObjectMeta, selected) {
		log.Debug("not injected: not requested")
		wh.decisions.WithLabelValues(resultNotRequested).Inc()
		return allow, nil
	}
	// A cluster without native sidecars: injecting would hold the pod in
	// Init for ever, and admitting it uninjected would let a pod that asked
	// for Tollgate reach the providers with no policy and no record. Refuse
	// it, as the webhooks fail closed for opted-in pods (failurePolicy:
	// Fail): its controller shows why and retries.
	if err := CheckKubernetesVersion(wh.cfg.KubeVersion); err != nil {
		log.Warn("refused: the cluster is too old for the sidecars", "err", err)
		wh.decisions.WithLabelValues(resultUnsupported).Inc()
		return deny("tollgate injection: this pod asks for the Tollgate sidecars, which cannot run here: " + err.Error() +
			"; the pod is refused rather than started without them (opt it out with the label or annotation " + KeyInject + ": disabled)"), nil
	}
	before := &corev1.PodTemplateSpec{ObjectMeta: pod.ObjectMeta, Spec: pod.Spec}
	after := before.DeepCopy()
	changed, err := Pod(&after.ObjectMeta, &after.Spec, w, wh.cfg)
	if err == nil && changed {
		var ops []Operation
		if ops, err = Patch(before, after); err == nil {
			allow.Patch, err = json.Marshal(ops)
			allow.PatchType = ptr(admissionv1.PatchTypeJSONPatch)
		}
	}
	switch {
	case err != nil:
		log.Warn("refused: cannot inject", "err", err)
		wh.decisions.WithLabelValues(resultRefused).Inc()
		return deny("tollgate injection: " + err.Error()), nil
	case !changed:
		reason, _ := SkipReason(&pod.ObjectMeta, &pod.Spec)
		log.Info("not injected", "reason", reason)
		wh.decisions.WithLabelValues(resultSkipped).Inc()
	default:
		log.Info("injected")
		wh.decisions.WithLabelValues(resultInjected).Inc()
		for _, w := range Warnings(&pod.ObjectMeta, &pod.Spec) {
			allow.Warnings = append(allow.Warnings, "tollgate: "+w)
		}
	}
	return allow, nil
}

// deny refuses a pod with a message the API server passes on to whoever
// created it (kubectl, or the controller's events).
func deny(msg string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{Result: &metav1.Status{
		Status:  metav1.StatusFailure,
		Reason:  metav1.StatusReasonBadRequest,
		Code:    http.StatusBadRequest,
		Message: msg,
	}}
}
