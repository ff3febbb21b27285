package app

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/envoy"
)

// notebookPod is one pod, as the API server would send it to the webhook
// and as a user would hand it to `tollgate inject` (JSON is YAML).
const notebookPod = `{
  "apiVersion": "v1",
  "kind": "Pod",
  "metadata": {
    "name": "notebook",
    "namespace": "research",
    "labels": {"app": "notebook"},
    "annotations": {"tollgate.io/inject": "enabled"}
  },
  "spec": {
    "serviceAccountName": "data-science",
    "initContainers": [{"name": "fetch-data", "image": "registry.example.com/fetch:1"}],
    "containers": [
      {"name": "jupyter", "image": "registry.example.com/jupyter:2026.1",
       "env": [{"name": "ANTHROPIC_BASE_URL", "value": "https://proxy.example.com"}],
       "resources": {"limits": {"cpu": "2", "memory": "4Gi"}}},
      {"name": "sidecar-app", "image": "registry.example.com/helper:1"}
    ],
    "volumes": [{"name": "work", "emptyDir": {}}]
  }
}`

var injectArgs = []string{"--image", "ghcr.io/tollgate-dev/tollgate:v0.3.0", "--envoy-image", "envoyproxy/envoy:v1.40.1", "--redis", "redis://redis.tollgate.svc:6379"}

// runInjectCLI runs `tollgate inject -f -` through Run, input on stdin.
func runInjectCLI(t *testing.T, input string, args ...string) (stdout, stderr string) {
	t.Helper()
	in, err := os.Create(filepath.Join(t.TempDir(), "stdin"))
	if err != nil {
		t.Fatal(err)
	}
	in.WriteString(input)
	in.Seek(0, io.SeekStart)
	saved := os.Stdin
	os.Stdin = in
	defer func() { os.Stdin = saved; in.Close() }()
	var out, errOut bytes.Buffer
	if err := Run(context.Background(), append([]string{"inject", "-f", "-"}, args...), &out, &errOut); err != nil {
		t.Fatalf("tollgate inject: %v\n%s", err, errOut.String())
	}
	return out.String(), errOut.String()
}

func TestInjectCLIThroughRun(t *testing.T) {
	input := "# a bare pod\n" + notebookPod + "\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n"
	out, _ := runInjectCLI(t, input, injectArgs...)
	docs := strings.Split(out, "\n---\n")
	if len(docs) != 2 || docs[1] != "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n" {
		t.Fatalf("want the injected pod and the ConfigMap unchanged, got:\n%s", out)
	}
	for _, want := range []string{"tollgate.io/status: injected", "name: tollgate-bootstrap", "image: envoyproxy/envoy:v1.40.1",
		"value: redis://redis.tollgate.svc:6379", "value: https://proxy.example.com", "value: http://127.0.0.1:10000/v1"} {
		if !strings.Contains(docs[0], want) {
			t.Errorf("output lacks %q:\n%s", want, docs[0])
		}
	}

	again, notes := runInjectCLI(t, out, injectArgs...)
	if again != out {
		t.Fatalf("injecting the output again changed it:\n%s", again)
	}
	if !strings.Contains(notes, "Pod notebook: already injected") {
		t.Errorf("stderr does not say why nothing changed: %q", notes)
	}
}

func TestInjectCLIFilesAndConfig(t *testing.T) {
	dir := t.TempDir()
	in, out, cfg := filepath.Join(dir, "in.yaml"), filepath.Join(dir, "out.yaml"), filepath.Join(dir, "inject.yaml")
	os.WriteFile(in, []byte(notebookPod), 0o644)
	os.WriteFile(cfg, []byte("image: from-file:1\nclickhouse: clickhouse://ch:9000/tollgate\n"), 0o644)
	var stdout, stderr bytes.Buffer
	if err := Run(context.Background(), []string{"inject", "-f", in, "-o", out, "--config", cfg, "--image", "from-flag:2"}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if stdout.Len() != 0 || !strings.Contains(string(got), "image: from-flag:2") || strings.Contains(string(got), "from-file:1") ||
		!strings.Contains(string(got), "clickhouse://ch:9000/tollgate") {
		t.Fatalf("flag over file, file over default: got\n%s", got)
	}

	for name, args := range map[string][]string{
		"no -f":            {"inject"},
		"bad config key":   {"inject", "-f", in, "--config", writeTemp(t, "imgae: x\n")},
		"bad redis":        {"inject", "-f", in, "--redis", "localhost:6379"},
		"missing input":    {"inject", "-f", filepath.Join(dir, "nope.yaml")},
		"stray argument":   {"inject", "-f", in, "extra"},
		"unparsable input": {"inject", "-f", writeTemp(t, "kind: Pod\n  bad: [\n")},
	} {
		if err := Run(context.Background(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "file.yaml")
	if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestBootstrapWritesTheSidecarConfig(t *testing.T) {
	out := filepath.Join(t.TempDir(), "envoy.yaml")
	if err := Run(context.Background(), []string{"bootstrap", "--out", out}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, envoy.Sidecar) {
		t.Fatalf("written file differs from envoy.Sidecar (err %v)", err)
	}
	var stdout bytes.Buffer
	if err := Run(context.Background(), []string{"bootstrap"}, &stdout, io.Discard); err != nil || !bytes.Equal(stdout.Bytes(), envoy.Sidecar) {
		t.Fatalf("bootstrap to stdout: err %v", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

// TestWebhookOverHTTPS runs `tollgate webhook` on 127.0.0.1 with a fresh
// self-signed certificate, sends it the AdmissionReview the API server
// would, applies the returned JSON Patch to the pod, and expects exactly
// the pod `tollgate inject` writes for the same input.
func TestWebhookOverHTTPS(t *testing.T) {
	certPEM, certFile, keyFile := webhookTestCert(t)
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &webhookReadyWriter{ready: make(chan string, 1)}
	done := make(chan error, 1)
	// The images come from the environment here, the Redis URL from a flag.
	getenv := func(k string) string {
		return map[string]string{"TOLLGATE_IMAGE": injectArgs[1], "TOLLGATE_ENVOY_IMAGE": injectArgs[3]}[k]
	}
	go func() {
		done <- run(ctx, []string{"webhook", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile, "--redis", injectArgs[5]},
			io.Discard, stderr, getenv)
	}()
	var addr string
	select {
	case addr = <-stderr.ready:
	case err := <-done:
		t.Fatalf("webhook stopped: %v\n%s", err, stderr)
	case <-time.After(10 * time.Second):
		t.Fatalf("webhook not ready:\n%s", stderr)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("webhook shutdown: %v", err)
		}
	}()

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	base := "https://" + addr

	resp, err := client.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}

	review := fmt.Sprintf(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
		"uid":"705ab4f5-6393-11e8-b7cc-42010a800002",
		"kind":{"group":"","version":"v1","kind":"Pod"},
		"resource":{"group":"","version":"v1","resource":"pods"},
		"requestKind":{"group":"","version":"v1","kind":"Pod"},
		"requestResource":{"group":"","version":"v1","resource":"pods"},
		"namespace":"research","operation":"CREATE",
		"userInfo":{"username":"alice"},
		"object":%s,"oldObject":null,"dryRun":false,
		"options":{"apiVersion":"meta.k8s.io/v1","kind":"CreateOptions"}}}`, notebookPod)
	resp, err = client.Post(base+"/inject", "application/json", strings.NewReader(review))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("inject: %d %s", resp.StatusCode, body)
	}
	var answer struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Response   struct {
			UID       string `json:"uid"`
			Allowed   bool   `json:"allowed"`
			PatchType string `json:"patchType"`
			Patch     []byte `json:"patch"` // base64 in JSON
		} `json:"response"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		t.Fatal(err)
	}
	r := answer.Response
	if answer.APIVersion != "admission.k8s.io/v1" || answer.Kind != "AdmissionReview" || r.UID != "705ab4f5-6393-11e8-b7cc-42010a800002" ||
		!r.Allowed || r.PatchType != "JSONPatch" || len(r.Patch) == 0 {
		t.Fatalf("unexpected answer: %s", body)
	}
	patched, err := applyJSONPatchForTest([]byte(notebookPod), r.Patch)
	if err != nil {
		t.Fatalf("applying the webhook's patch: %v\npatch: %s", err, r.Patch)
	}

	cliYAML, _ := runInjectCLI(t, notebookPod, injectArgs...)
	cliJSON, err := yaml.YAMLToJSON([]byte(cliYAML))
	if err != nil {
		t.Fatal(err)
	}
	var fromCLI, fromWebhook any
	json.Unmarshal(cliJSON, &fromCLI)
	json.Unmarshal(patched, &fromWebhook)
	if !reflect.DeepEqual(fromCLI, fromWebhook) {
		t.Fatalf("webhook and CLI disagree.\nwebhook:\n%s\ncli:\n%s", patched, cliJSON)
	}

	// The answer is counted on the metrics port (plain HTTP, for Prometheus).
	stderr.mu.Lock()
	metricsAddr := stderr.addrs["metrics"]
	stderr.mu.Unlock()
	mresp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	if !strings.Contains(string(metrics), `tollgate_injector_admissions_total{result="injected"} 1`) {
		t.Errorf("/metrics does not count the injection:\n%s", metrics)
	}
	// A DNS-rebinding page reaches the port under its own name: refused.
	rebound, err := http.NewRequest("GET", "http://"+metricsAddr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	rebound.Host = "evil.example"
	if rresp, err := http.DefaultClient.Do(rebound); err != nil {
		t.Fatal(err)
	} else {
		rresp.Body.Close()
		if rresp.StatusCode != http.StatusForbidden {
			t.Errorf("webhook /metrics with Host evil.example: %d, want 403", rresp.StatusCode)
		}
	}

	resp, err = client.Post(base+"/inject", "application/json", strings.NewReader(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "malformed AdmissionReview") {
		t.Fatalf("malformed review: %d %s", resp.StatusCode, body)
	}
}

func TestWebhookFlagErrors(t *testing.T) {
	_, certFile, keyFile := webhookTestCert(t)
	noEnv := func(string) string { return "" }
	for name, args := range map[string][]string{
		"no key pair":        {"webhook", "--listen", "127.0.0.1:0"},
		"bad key pair":       {"webhook", "--listen", "127.0.0.1:0", "--tls-cert", keyFile, "--tls-key", certFile},
		"bad log level":      {"webhook", "--listen", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile, "--log-level", "loud"},
		"bad config":         {"webhook", "--listen", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile, "--clickhouse", "http://x"},
		"bad kube-version":   {"webhook", "--listen", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile, "--kube-version", "latest"},
		"bad metrics-listen": {"webhook", "--listen", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile, "--metrics-listen", "nowhere"},
	} {
		if err := run(context.Background(), args, io.Discard, io.Discard, noEnv); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

// webhookTestCert makes a self-signed certificate for 127.0.0.1.
func webhookTestCert(t *testing.T) (certPEM []byte, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "tollgate-webhook.test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	os.WriteFile(certFile, certPEM, 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	return certPEM, certFile, keyFile
}

// webhookReadyWriter is the webhook's stderr: it hands over the address of
// the "ready" line.
type webhookReadyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	ready chan string
	sent  bool
	addrs map[string]string // of the ready line
}

func (w *webhookReadyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	sc := bufio.NewScanner(bytes.NewReader(w.buf.Bytes()))
	for sc.Scan() {
		if fields, ok := strings.CutPrefix(sc.Text(), "tollgate webhook ready "); ok && !w.sent {
			w.sent = true
			w.addrs = map[string]string{}
			for _, f := range strings.Fields(fields) {
				k, v, _ := strings.Cut(f, "=")
				w.addrs[k] = v
			}
			w.ready <- w.addrs["listen"]
		}
	}
	return len(p), nil
}

func (w *webhookReadyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// applyJSONPatchForTest applies RFC 6902 add and replace operations,
// written apart from the injector's own code so it checks the patch
// independently.
func applyJSONPatchForTest(doc, patch []byte) ([]byte, error) {
	var root any
	if err := json.Unmarshal(doc, &root); err != nil {
		return nil, err
	}
	var ops []struct {
		Op    string          `json:"op"`
		Path  string          `json:"path"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(patch, &ops); err != nil {
		return nil, err
	}
	for _, op := range ops {
		var value any
		if err := json.Unmarshal(op.Value, &value); err != nil {
			return nil, fmt.Errorf("%s: value: %w", op.Path, err)
		}
		if op.Op != "add" && op.Op != "replace" {
			return nil, fmt.Errorf("unexpected op %q", op.Op)
		}
		parts := strings.Split(op.Path, "/")[1:]
		for i := range parts {
			parts[i] = strings.ReplaceAll(strings.ReplaceAll(parts[i], "~1", "/"), "~0", "~")
		}
		// Walk to the parent, remembering how to store a grown array back.
		parent, store := root, func(any) {}
		for _, p := range parts[:len(parts)-1] {
			switch n := parent.(type) {
			case map[string]any:
				key := p
				parent, store = n[key], func(v any) { n[key] = v }
			case []any:
				i, err := strconv.Atoi(p)
				if err != nil || i >= len(n) {
					return nil, fmt.Errorf("%s: bad index %q", op.Path, p)
				}
				parent, store = n[i], func(v any) { n[i] = v }
			default:
				return nil, fmt.Errorf("%s: no such path", op.Path)
			}
		}
		last := parts[len(parts)-1]
		switch n := parent.(type) {
		case map[string]any:
			if _, ok := n[last]; op.Op == "replace" && !ok {
				return nil, fmt.Errorf("%s: nothing to replace", op.Path)
			}
			n[last] = value
		case []any:
			i := len(n)
			if last != "-" {
				var err error
				if i, err = strconv.Atoi(last); err != nil || i > len(n) {
					return nil, fmt.Errorf("%s: bad index", op.Path)
				}
			}
			if op.Op == "replace" {
				n[i] = value
				break
			}
			grown := append(append(append([]any{}, n[:i]...), value), n[i:]...)
			store(grown)
		default:
			return nil, fmt.Errorf("%s: parent missing", op.Path)
		}
	}
	return json.Marshal(root)
}
