package oldest_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"
)

// bootstraps lists every Envoy bootstrap of the repository: all of envoy/
// and the gateway's copy that the Kubernetes manifests mount.
func bootstraps(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join("..", "..", "k8s", "gateway", "envoy.yaml"))
	for _, want := range []string{"sidecar.yaml", "gateway.yaml"} {
		if !contains(files, filepath.Join("..", want)) {
			t.Fatalf("envoy/%s not found from %v; run the test from envoy/oldest", want, files)
		}
	}
	return files
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// load parses an Envoy bootstrap as Envoy would — YAML, unknown fields
// rejected, typed extensions resolved — and validates it.
func load(data []byte) (*bootstrapv3.Bootstrap, error) {
	b := &bootstrapv3.Bootstrap{}
	if err := decode(data, b); err != nil {
		return nil, err
	}
	if err := validate(b, true); err != nil {
		return nil, fmt.Errorf("validation: %w", err)
	}
	return b, nil
}

func decode(data []byte, m proto.Message) error {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return fmt.Errorf("yaml: %w", err)
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(js, m); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	return nil
}

type validator interface{ ValidateAll() error }

// validate runs the generated ValidateAll on m (when whole; a MERGE
// fragment of an EnvoyFilter is not) and on every message packed in an Any
// below it: the generated code stops at Any fields, and nearly all of a
// configuration sits in typed_config Anys.
func validate(m proto.Message, whole bool) error {
	var errs []error
	if v, ok := m.(validator); ok && whole {
		errs = append(errs, v.ValidateAll())
	}
	var walk func(m protoreflect.Message)
	walk = func(m protoreflect.Message) {
		if a, ok := m.Interface().(*anypb.Any); ok {
			inner, err := a.UnmarshalNew()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", a.GetTypeUrl(), err))
				return
			}
			if v, ok := inner.(validator); ok {
				if err := v.ValidateAll(); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", a.GetTypeUrl(), err))
				}
			}
			walk(inner.ProtoReflect())
			return
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsMap():
				if fd.MapValue().Message() != nil {
					v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
						walk(mv.Message())
						return true
					})
				}
			case fd.IsList():
				if fd.Message() != nil {
					for i := range v.List().Len() {
						walk(v.List().Get(i).Message())
					}
				}
			case fd.Message() != nil:
				walk(v.Message())
			}
			return true
		})
	}
	walk(m.ProtoReflect())
	return errors.Join(errs...)
}

func TestBootstrapsValidateOnOldestEnvoy(t *testing.T) {
	for _, f := range bootstraps(t) {
		t.Run(filepath.ToSlash(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := load(data); err != nil {
				t.Fatalf("%s does not load into Envoy 1.36's schema: %v", f, err)
			}
		})
	}
}

// patchTypes maps an EnvoyFilter's applyTo to the Envoy message its patch
// value stands for (Istio's networking/v1alpha3 EnvoyFilter reference).
var patchTypes = map[string]func() proto.Message{
	"LISTENER":            func() proto.Message { return &listenerv3.Listener{} },
	"FILTER_CHAIN":        func() proto.Message { return &listenerv3.FilterChain{} },
	"NETWORK_FILTER":      func() proto.Message { return &listenerv3.Filter{} },
	"HTTP_FILTER":         func() proto.Message { return &hcmv3.HttpFilter{} },
	"ROUTE_CONFIGURATION": func() proto.Message { return &routev3.RouteConfiguration{} },
	"VIRTUAL_HOST":        func() proto.Message { return &routev3.VirtualHost{} },
	"HTTP_ROUTE":          func() proto.Message { return &routev3.Route{} },
	"CLUSTER":             func() proto.Message { return &clusterv3.Cluster{} },
	"EXTENSION_CONFIG":    func() proto.Message { return &corev3.TypedExtensionConfig{} },
}

// TestExamplePatchesValidateOnOldestEnvoy: the Envoy messages inside the
// examples' EnvoyFilters. Other documents (Istio or Envoy Gateway
// resources) carry no Envoy protos; one that does fails, so that a new kind
// of example is not skipped unseen.
func TestExamplePatchesValidateOnOldestEnvoy(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "examples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	patches := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range yamlDocs(string(data)) {
			var ef struct {
				Kind string `json:"kind"`
				Spec struct {
					ConfigPatches []struct {
						ApplyTo string `json:"applyTo"`
						Patch   struct {
							Operation string          `json:"operation"`
							Value     json.RawMessage `json:"value"`
						} `json:"patch"`
					} `json:"configPatches"`
				} `json:"spec"`
			}
			if err := yaml.Unmarshal([]byte(doc), &ef); err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			if ef.Kind != "EnvoyFilter" {
				if strings.Contains(doc, "type.googleapis.com/envoy.") {
					t.Errorf("%s document %d (%s) holds Envoy messages this test does not check; add a case", f, i, ef.Kind)
				}
				continue
			}
			for j, cp := range ef.Spec.ConfigPatches {
				where := fmt.Sprintf("%s document %d patch %d (%s %s)", f, i, j, cp.ApplyTo, cp.Patch.Operation)
				newMsg, ok := patchTypes[cp.ApplyTo]
				if !ok {
					t.Errorf("%s: applyTo not known to this test; add it to patchTypes", where)
					continue
				}
				m := newMsg()
				if err := decode(cp.Patch.Value, m); err != nil {
					t.Errorf("%s does not load into Envoy 1.36's schema: %v", where, err)
					continue
				}
				// A MERGE value is a fragment (no name, say): only the
				// typed configs inside it are whole messages.
				if err := validate(m, cp.Patch.Operation != "MERGE"); err != nil {
					t.Errorf("%s fails Envoy 1.36's validation: %v", where, err)
				}
				patches++
			}
		}
	}
	if patches == 0 {
		t.Fatal("no EnvoyFilter patch found in envoy/examples")
	}
}

// TestOldSchemaRejectsNewerFields proves this module checks what it is for:
// a field Envoy added after 1.36 (each known to the main module's newer
// schema) fails here, as do the mistakes any schema catches.
func TestOldSchemaRejectsNewerFields(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "sidecar.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, after, add string
	}{
		// Envoy 1.37+: ext_proc's allow_content_length_header.
		{"newer field in a typed extension", "allow_mode_override: true", "allow_content_length_header: true"},
		// Envoy 1.37+: the connection manager's record_route_resolution_stats.
		{"newer field in the connection manager", "stat_prefix: tollgate", "record_route_resolution_stats: true"},
		{"misspelled field", "allow_mode_override: true", "allow_mode_overide: true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			broken, ok := addLineAfter(string(data), tt.after, tt.add)
			if !ok {
				t.Fatalf("sidecar.yaml no longer contains %q; update this test", tt.after)
			}
			if _, err := load([]byte(broken)); err == nil {
				t.Fatalf("adding %q after %q still validates against Envoy 1.36's schema", tt.add, tt.after)
			} else {
				t.Logf("rejected as expected: %v", err)
			}
		})
	}
}

// addLineAfter inserts line, indented like it, after the first line that
// contains after.
func addLineAfter(doc, after, line string) (string, bool) {
	lines := strings.Split(doc, "\n")
	for i, l := range lines {
		if strings.Contains(l, after) {
			indent := l[:len(l)-len(strings.TrimLeft(l, " "))]
			out := append(append(append([]string{}, lines[:i+1]...), indent+line), lines[i+1:]...)
			return strings.Join(out, "\n"), true
		}
	}
	return doc, false
}

// yamlDocs splits a multi-document YAML file, dropping empty documents.
func yamlDocs(data string) []string {
	var docs []string
	for _, d := range strings.Split("\n"+data, "\n---\n") {
		if !onlyComments(d) {
			docs = append(docs, d)
		}
	}
	return docs
}

func onlyComments(doc string) bool {
	for _, line := range strings.Split(doc, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}
