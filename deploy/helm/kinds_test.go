package helm_test

import (
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/tollgate-dev/tollgate/internal/kubetypes"
)

// kinds are the API types the chart (and the kustomize bases it is
// compared with) may hold; anything else fails, so a new kind is a
// decision, with a decoder to go with it.
var kinds = map[string]func() any{
	"apps/v1 Deployment":                     func() any { return &appsv1.Deployment{} },
	"batch/v1 Job":                           func() any { return &batchv1.Job{} },
	"v1 Service":                             func() any { return &corev1.Service{} },
	"v1 ConfigMap":                           func() any { return &corev1.ConfigMap{} },
	"v1 ServiceAccount":                      func() any { return &corev1.ServiceAccount{} },
	"v1 Namespace":                           func() any { return &corev1.Namespace{} },
	"policy/v1 PodDisruptionBudget":          func() any { return &policyv1.PodDisruptionBudget{} },
	"autoscaling/v2 HorizontalPodAutoscaler": func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"networking.k8s.io/v1 NetworkPolicy":     func() any { return &networkingv1.NetworkPolicy{} },
	"admissionregistration.k8s.io/v1 MutatingWebhookConfiguration": func() any { return &admissionv1.MutatingWebhookConfiguration{} },
	"rbac.authorization.k8s.io/v1 ClusterRole":                     func() any { return &rbacv1.ClusterRole{} },
	"rbac.authorization.k8s.io/v1 ClusterRoleBinding":              func() any { return &rbacv1.ClusterRoleBinding{} },
	"cert-manager.io/v1 Issuer":                                    func() any { return &certIssuer{} },
	"cert-manager.io/v1 Certificate":                               func() any { return &certificate{} },
	"monitoring.coreos.com/v1 PodMonitor":                          func() any { return &podMonitor{} },
	"monitoring.coreos.com/v1 PrometheusRule":                      func() any { return &prometheusRule{} },
}

// The custom resources, decoded strictly like the rest (kubetypes: only
// the fields used, with the upstream projects' names).
type (
	certIssuer     = kubetypes.CertIssuer
	certificate    = kubetypes.Certificate
	podMonitor     = kubetypes.PodMonitor
	prometheusRule = kubetypes.PrometheusRule
)
