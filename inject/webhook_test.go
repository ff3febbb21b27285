package inject

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func reviewOf(t *testing.T, op admissionv1.Operation, kind metav1.GroupVersionKind, obj any) []byte {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       "4b2c6f1e-0000-4000-8000-000000000001",
			Kind:      kind,
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: "assistants",
			Operation: op,
			Object:    runtime.RawExtension{Raw: raw},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var podKind = metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}

func webhookPod(annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: "chat-7d9f8c6b5-", Namespace: "assistants", Annotations: annotations},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "app"}}},
	}
}

func postReview(t *testing.T, h http.Handler, query string, body []byte) (*httptest.ResponseRecorder, *admissionv1.AdmissionResponse) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/inject"+query, strings.NewReader(string(body))))
	if rec.Code != http.StatusOK {
		return rec, nil
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &review); err != nil {
		t.Fatal(err)
	}
	if review.APIVersion != "admission.k8s.io/v1" || review.Kind != "AdmissionReview" || review.Response == nil {
		t.Fatalf("not an AdmissionReview response: %s", rec.Body)
	}
	if review.Response.UID != "4b2c6f1e-0000-4000-8000-000000000001" {
		t.Fatalf("uid %q, want the request's", review.Response.UID)
	}
	return rec, review.Response
}

func TestWebhookDecides(t *testing.T) {
	h, err := NewWebhook(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		query     string
		body      []byte
		allowed   bool
		patched   bool
		messageIn string
	}{
		{"namespace selected", "?via=namespace", reviewOf(t, admissionv1.Create, podKind, webhookPod(nil)), true, true, ""},
		{"pod selected", "?via=pod", reviewOf(t, admissionv1.Create, podKind, webhookPod(nil)), true, true, ""},
		{"namespace path", "/namespace", reviewOf(t, admissionv1.Create, podKind, webhookPod(nil)), true, true, ""},
		{"pod path", "/pod", reviewOf(t, admissionv1.Create, podKind, webhookPod(nil)), true, true, ""},
		{"pod label without a path", "", reviewOf(t, admissionv1.Create, podKind, func() *corev1.Pod {
			p := webhookPod(nil)
			p.Labels = map[string]string{KeyInject: "enabled"}
			return p
		}()), true, true, ""},
		{"opt-out label", "/namespace", reviewOf(t, admissionv1.Create, podKind, func() *corev1.Pod {
			p := webhookPod(nil)
			p.Labels = map[string]string{KeyInject: "disabled"}
			return p
		}()), true, false, ""},
		{"not selected", "", reviewOf(t, admissionv1.Create, podKind, webhookPod(nil)), true, false, ""},
		{"annotation opts in", "", reviewOf(t, admissionv1.Create, podKind, webhookPod(map[string]string{KeyInject: "enabled"})), true, true, ""},
		{"opt-out wins", "?via=namespace", reviewOf(t, admissionv1.Create, podKind, webhookPod(map[string]string{KeyInject: "false"})), true, false, ""},
		{"update", "?via=namespace", reviewOf(t, admissionv1.Update, podKind, webhookPod(nil)), true, false, ""},
		{"not a pod", "?via=namespace", reviewOf(t, admissionv1.Create, metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, map[string]any{"kind": "Deployment"}), true, false, ""},
		{"cannot inject", "?via=namespace", reviewOf(t, admissionv1.Create, podKind, func() *corev1.Pod {
			p := webhookPod(nil)
			p.Spec.Containers[0].Name = "envoy"
			return p
		}()), false, false, `container named "envoy"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, resp := postReview(t, h, tt.query, tt.body)
			if resp == nil {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if resp.Allowed != tt.allowed {
				t.Fatalf("allowed = %v, want %v (%s)", resp.Allowed, tt.allowed, rec.Body)
			}
			if got := len(resp.Patch) > 0; got != tt.patched {
				t.Fatalf("patched = %v, want %v", got, tt.patched)
			}
			if tt.patched && (resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch) {
				t.Fatalf("patchType = %v", resp.PatchType)
			}
			if tt.messageIn != "" && (resp.Result == nil || !strings.Contains(resp.Result.Message, tt.messageIn)) {
				t.Fatalf("result %+v does not say %q", resp.Result, tt.messageIn)
			}
		})
	}
}

func TestWebhookRejectsMalformedReviews(t *testing.T) {
	h, err := NewWebhook(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	good := string(reviewOf(t, admissionv1.Create, podKind, webhookPod(nil)))
	tests := []struct {
		name, query, body, says string
		status                  int
	}{
		{"not json", "", "{", "malformed AdmissionReview", 400},
		{"v1beta1", "", strings.Replace(good, "admission.k8s.io/v1", "admission.k8s.io/v1beta1", 1), "admission.k8s.io/v1", 400},
		{"no request", "", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, "no request", 400},
		{"no uid", "", strings.Replace(good, `"uid":"4b2c6f1e-0000-4000-8000-000000000001",`, "", 1), "no uid", 400},
		{"object not a pod", "", strings.Replace(good, `"containers":[`, `"containers":7,"x":[`, 1), "not a pod", 400},
		{"unknown via", "?via=label", good, `"label"`, 400},
		{"unknown path", "/label", good, `"label"`, 400},
		{"path and query disagree", "/pod?via=namespace", good, "disagree", 400},
		{"too large", "", `{"x":"` + strings.Repeat("a", maxReviewBytes) + `"}`, "request body too large", 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("POST", "/inject"+tt.query, strings.NewReader(tt.body)))
			if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.says) {
				t.Fatalf("got %d %q, want %d saying %q", rec.Code, rec.Body, tt.status, tt.says)
			}
		})
	}
}

func TestWebhookHealthz(t *testing.T) {
	h, _ := NewWebhook(Config{}, nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != 200 {
		t.Fatalf("healthz: %d", rec.Code)
	}
	if _, err := NewWebhook(Config{Redis: "nope"}, nil); err == nil {
		t.Fatal("a bad configuration was accepted")
	}
}
