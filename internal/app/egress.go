package app

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/policies/egress"
)

// openEgressPolicy watches --egress-policy. Without one, the returned
// watcher's Current is nil: everything is allowed. A broken file at start is
// an error; later a broken edit keeps the last good policy.
func openEgressPolicy(cfg *Config, reg prometheus.Registerer, log *slog.Logger) (*egress.Watcher, error) {
	if cfg.EgressPolicy == "" {
		return nil, nil
	}
	w, err := egress.Watch(cfg.EgressPolicy, egress.WatcherOptions{Logger: log, Registerer: reg})
	if err != nil {
		return nil, fmt.Errorf("egress-policy: %w", err)
	}
	return w, nil
}

// sidecarWorkload is the identity of the pod this processor serves, from the
// settings the injector fills in (labels from a downward API file, read at
// start).
func sidecarWorkload(cfg *Config) (egress.Workload, error) {
	w := egress.Workload{Namespace: cfg.WorkloadNamespace, ServiceAccount: cfg.WorkloadServiceAccount, Name: cfg.WorkloadName}
	if cfg.WorkloadLabelsFile == "" {
		return w, nil
	}
	data, err := os.ReadFile(cfg.WorkloadLabelsFile)
	if err != nil {
		return w, fmt.Errorf("workload-labels-file: %w", err)
	}
	if w.Labels, err = parseDownwardLabels(data); err != nil {
		return w, fmt.Errorf("workload-labels-file %s: %w", cfg.WorkloadLabelsFile, err)
	}
	return w, nil
}

// parseDownwardLabels reads the downward API's labels file: one
// key="value" per line, the value quoted as in Go.
func parseDownwardLabels(data []byte) (map[string]string, error) {
	labels := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		key, quoted, ok := strings.Cut(line, "=")
		value, err := strconv.Unquote(quoted)
		if !ok || key == "" || err != nil {
			return nil, fmt.Errorf("line %d: want key=\"value\", got %q", n, line)
		}
		labels[key] = value
	}
	return labels, sc.Err()
}
