package envoy_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"
)

// configFiles lists every configuration in this folder; each one is tested.
func configFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no *.yaml configuration found in envoy/")
	}
	return files
}

// load parses an Envoy bootstrap as Envoy would — YAML, unknown fields
// rejected, typed extensions resolved — and validates it.
func load(data []byte) (*bootstrapv3.Bootstrap, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	b := &bootstrapv3.Bootstrap{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(js, b); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	if err := validate(b); err != nil {
		return nil, fmt.Errorf("validation: %w", err)
	}
	return b, nil
}

type validator interface{ ValidateAll() error }

// validate runs the generated ValidateAll on the bootstrap and on every
// message packed in an Any below it. The generated code stops at Any
// fields, and nearly all of a configuration — filters, transport sockets,
// protocol options — sits in typed_config Anys; without this walk a bad
// value there would pass.
func validate(m proto.Message) error {
	var errs []error
	if v, ok := m.(validator); ok {
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

func TestConfigsValidate(t *testing.T) {
	for _, f := range configFiles(t) {
		t.Run(f, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := load(data); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
		})
	}
}

// TestValidationBites proves the check above fails on the mistakes it is
// there to catch, both in the bootstrap itself and inside typed extensions.
func TestValidationBites(t *testing.T) {
	data, err := os.ReadFile("sidecar.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, old, new string
	}{
		{"misspelled bootstrap field", "static_resources:", "static_resource:"},
		{"misspelled field in a typed extension", "allow_mode_override: true", "allow_mode_overide: true"},
		{"misspelled field deep in a route", "path_separated_prefix:", "path_seperated_prefix:"},
		{"invalid enum name", "request_body_mode: BUFFERED", "request_body_mode: BUFFERD"},
		{"undefined enum number", "request_body_mode: BUFFERED", "request_body_mode: 99"},
		{"port out of range", "port_value: 9902", "port_value: 70000"},
		{"empty pipe path", "pipe: { path: /var/run/tollgate/ext_proc.sock }", "pipe: { path: \"\" }"},
		{"duration out of range in a typed extension", "message_timeout: 2s", "message_timeout: 7200s"},
		{"wrong value type", "max_hosts: 1024", "max_hosts: lots"},
		{"unknown extension type", "ext_proc.v3.ExternalProcessor", "ext_proc.v3.ExternalProcesser"},
		{"empty required field in a typed extension", "cluster_name: tollgate", "cluster_name: \"\""},
		{"unknown upstream filter type", "upstream_codec.v3.UpstreamCodec", "upstream_codec.v3.UpstreamCodek"},
		{"misspelled field in an upstream filter", "request_body_mode: NONE", "request_bdy_mode: NONE"},
		{"misspelled field in the header filter", "key_matcher:", "key_macher:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(string(data), tt.old) {
				t.Fatalf("sidecar.yaml no longer contains %q; update this test", tt.old)
			}
			broken := strings.Replace(string(data), tt.old, tt.new, 1)
			if _, err := load([]byte(broken)); err == nil {
				t.Fatalf("replacing %q with %q still validates", tt.old, tt.new)
			} else {
				t.Logf("rejected as expected: %v", err)
			}
		})
	}
}
