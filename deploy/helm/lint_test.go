package helm_test

import (
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
)

// TestHelmLint is `helm lint` (Helm's own rules: Chart.yaml, values
// against the schema, templates that render to valid YAML, no API
// deprecated or removed in the oldest Kubernetes the chart accepts), for
// the defaults and the variants. Warnings fail; information (Chart.yaml
// has no icon) does not.
func TestHelmLint(t *testing.T) {
	oldest, err := common.ParseKubeVersion("v1.30.0")
	if err != nil {
		t.Fatal(err)
	}
	for name, values := range variants {
		l := lint.RunAll(chartDir, values, "tollgate", lint.WithKubeVersion(oldest))
		for _, m := range l.Messages {
			if m.Severity >= support.WarningSev {
				t.Errorf("%s: helm lint: %s", name, m)
			}
		}
	}
}
