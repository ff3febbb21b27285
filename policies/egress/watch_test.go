package egress_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/policies/egress"
)

const (
	policyV1 = "defaults:\n  allow: {models: [gpt-4o-mini]}\n"
	policyV2 = "defaults:\n  allow: {models: [gpt-4o]}\n"
	// Line 3 is the mistake.
	policyBroken = "defaults:\n  allow:\n    modles: [gpt-4o]\n"
)

func allowsModel(p *egress.Policy, model string) bool {
	return p.Decide(egress.Workload{}).AllowsModel("openai", model)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestEgressWatcherKeepsLastGoodPolicy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, path, policyV1)
	var logs testenv.LogBuffer // the poller goroutine writes, the test reads
	reg := prometheus.NewRegistry()
	w, err := egress.Watch(path, egress.WatcherOptions{
		Interval:   time.Hour, // the test reloads by hand
		Logger:     slog.New(slog.NewTextHandler(&logs, nil)),
		Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	first := w.Current()
	if !allowsModel(first, "gpt-4o-mini") || w.LastError() != nil {
		t.Fatalf("v1 not in force (err %v)", w.LastError())
	}

	// Unchanged content: the same policy, not a re-parse.
	if err := w.Reload(); err != nil || w.Current() != first {
		t.Fatalf("unchanged file swapped the policy (err %v)", err)
	}

	// A broken edit: logged with file and line, counted, v1 stays.
	writeFile(t, path, policyBroken)
	err = w.Reload()
	wantErr := path + ":3: defaults.allow.modles: unknown key (want providers, models or targetOrigins)"
	if err == nil || err.Error() != wantErr || w.LastError() == nil || w.LastError().Error() != wantErr {
		t.Fatalf("Reload() = %v, LastError() = %v, want %s", err, w.LastError(), wantErr)
	}
	if w.Current() != first || w.Failures() != 1 {
		t.Fatalf("broken file: policy swapped or failure not counted (%d)", w.Failures())
	}
	if !strings.Contains(logs.String(), "policy.yaml:3: defaults.allow.modles") {
		t.Fatalf("log does not name the line:\n%s", logs.String())
	}
	// Polling the same broken file again neither counts nor logs again.
	_ = w.Reload()
	if w.Failures() != 1 || strings.Count(logs.String(), "modles") != 1 {
		t.Fatalf("the same broken file was counted %d times", w.Failures())
	}

	// The fix is picked up.
	writeFile(t, path, policyV2)
	if err := w.Reload(); err != nil || w.LastError() != nil {
		t.Fatalf("fixed file: %v", err)
	}
	if !allowsModel(w.Current(), "gpt-4o") || allowsModel(w.Current(), "gpt-4o-mini") {
		t.Fatal("v2 not in force")
	}

	// A file that disappears keeps v2; when it comes back, even with the
	// same content, the error clears.
	v2 := w.Current()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := w.Reload(); err == nil || w.Current() != v2 || w.Failures() != 2 {
		t.Fatalf("missing file: err %v, failures %d", err, w.Failures())
	}
	writeFile(t, path, policyV2)
	if err := w.Reload(); err != nil || w.LastError() != nil {
		t.Fatalf("restored file: %v", err)
	}

	counts := map[string]float64{}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			for _, l := range m.GetLabel() {
				name += "/" + l.GetValue()
			}
			counts[name] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	want := map[string]float64{
		"tollgate_egress_policy_loads_total/ok":    3,
		"tollgate_egress_policy_loads_total/error": 2,
		"tollgate_egress_policy_valid":             1,
	}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, counts[k], v, counts)
		}
	}
}

func TestEgressWatcherStartErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := egress.Watch(filepath.Join(dir, "missing.yaml"), egress.WatcherOptions{}); err == nil {
		t.Error("missing file: no error")
	}
	path := filepath.Join(dir, "policy.yaml")
	writeFile(t, path, policyBroken)
	_, err := egress.Watch(path, egress.WatcherOptions{})
	if err == nil || !strings.HasPrefix(err.Error(), path+":3: ") {
		t.Errorf("broken file: err = %v", err)
	}
	var nilWatcher *egress.Watcher
	if nilWatcher.Current() != nil {
		t.Error("nil watcher has a policy")
	}
}

// Kubernetes mounts a ConfigMap as <dir>/policy.yaml -> ..data/policy.yaml,
// ..data -> ..<timestamp>/, and updates it by writing a new timestamped
// folder and renaming a new ..data link over the old one.
func TestEgressWatcherConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	publish := func(version, content string) {
		t.Helper()
		ts := "..2025_01_01_00_00_0" + version
		if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, ts, "policy.yaml"), content)
		if err := os.Symlink(ts, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	publish("1", policyV1)
	path := filepath.Join(dir, "policy.yaml")
	if err := os.Symlink(filepath.Join("..data", "policy.yaml"), path); err != nil {
		t.Fatal(err)
	}
	w, err := egress.Watch(path, egress.WatcherOptions{Interval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	// Readers run throughout, as requests do.
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
					if p := w.Current(); p == nil {
						t.Error("no policy in force")
						return
					}
				}
			}
		}()
	}
	defer func() { close(stop); readers.Wait() }()

	publish("2", policyV2)
	testenv.WaitFor(t, 5*time.Second, "v2 through the ..data swap", func() bool { return allowsModel(w.Current(), "gpt-4o") })
	if err := os.RemoveAll(filepath.Join(dir, "..2025_01_01_00_00_01")); err != nil {
		t.Fatal(err)
	}

	publish("3", policyBroken)
	testenv.WaitFor(t, 5*time.Second, "the broken version reported", func() bool { return w.LastError() != nil })
	if !allowsModel(w.Current(), "gpt-4o") {
		t.Fatal("the broken version replaced the last good one")
	}

	publish("4", policyV1)
	testenv.WaitFor(t, 5*time.Second, "recovery", func() bool { return w.LastError() == nil && allowsModel(w.Current(), "gpt-4o-mini") })

	w.Close()
	w.Close() // idempotent
	if w.Current() == nil {
		t.Fatal("Close dropped the policy")
	}
}
