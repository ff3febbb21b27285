package k8s_test

import "github.com/tollgate-dev/tollgate/internal/kubetypes"

// The custom resources the manifests use, decoded strictly like the rest
// (kubetypes: only the fields used, with the upstream projects' names).
type (
	certIssuer     = kubetypes.CertIssuer
	certificate    = kubetypes.Certificate
	prometheusRule = kubetypes.PrometheusRule
)

func init() {
	kinds["cert-manager.io/v1 Issuer"] = func() any { return &certIssuer{} }
	kinds["cert-manager.io/v1 Certificate"] = func() any { return &certificate{} }
	kinds["monitoring.coreos.com/v1 PrometheusRule"] = func() any { return &prometheusRule{} }
}
