package app

import (
	"errors"
	"fmt"
	"strings"
)

// azureDeployments reads --azure-deployments, "deployment=model" entries,
// into the map the processor prices Azure OpenAI calls with. A deployment
// named twice is an error: which model it serves would be a guess.
func azureDeployments(entries []string) (map[string]string, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(entries))
	var errs []error
	for _, e := range entries {
		d, m, ok := strings.Cut(e, "=")
		d, m = strings.TrimSpace(d), strings.TrimSpace(m)
		switch {
		case !ok || d == "" || m == "":
			errs = append(errs, fmt.Errorf("want deployment=model, got %q", e))
		case out[d] != "":
			errs = append(errs, fmt.Errorf("deployment %q is listed twice", d))
		default:
			out[d] = m
		}
	}
	return out, errors.Join(errs...)
}
