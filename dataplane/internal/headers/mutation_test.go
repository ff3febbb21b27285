package headers

import (
	"errors"
	"io"
	"log/slog"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestHeaderMutationRules(t *testing.T) {
	base := func() List {
		return List{
			{":method", "POST"}, {":path", "/v1/chat/completions"}, {":authority", "proxy"}, {":scheme", "http"},
			{"x-a", "1"}, {"x-multi", "a"}, {"x-multi", "b"}, {"x-envoy-max-retries", "1"},
		}
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		name      string
		m         *extprocv3.HeaderMutation
		replacing bool
		rules     Rules
		want      List
		err       bool
	}{
		{
			name: "set without append overwrites every value",
			m:    mutation([]*corev3.HeaderValueOption{setHdr("x-multi", "c")}),
			want: List{{":method", "POST"}, {":path", "/v1/chat/completions"}, {":authority", "proxy"}, {":scheme", "http"},
				{"x-a", "1"}, {"x-multi", "c"}, {"x-envoy-max-retries", "1"}},
		},
		{
			name: "append=true adds a value",
			m:    mutation([]*corev3.HeaderValueOption{appendHdr("x-multi", "c"), appendHdr("x-new", "n")}),
			want: append(base(), Entry{"x-multi", "c"}, Entry{"x-new", "n"}),
		},
		{
			name: "append=false overwrites",
			m: mutation([]*corev3.HeaderValueOption{{
				Header: hv("x-a", "2"), Append: wrapperspb.Bool(false),
				AppendAction: corev3.HeaderValueOption_ADD_IF_ABSENT,
			}}),
			want: List{{":method", "POST"}, {":path", "/v1/chat/completions"}, {":authority", "proxy"}, {":scheme", "http"},
				{"x-a", "2"}, {"x-multi", "a"}, {"x-multi", "b"}, {"x-envoy-max-retries", "1"}},
		},
		{
			name: "append_action is ignored like in Envoy: ADD_IF_ABSENT still overwrites",
			m: mutation([]*corev3.HeaderValueOption{{
				Header: hv("x-a", "2"), AppendAction: corev3.HeaderValueOption_ADD_IF_ABSENT,
			}}),
			want: List{{":method", "POST"}, {":path", "/v1/chat/completions"}, {":authority", "proxy"}, {":scheme", "http"},
				{"x-a", "2"}, {"x-multi", "a"}, {"x-multi", "b"}, {"x-envoy-max-retries", "1"}},
		},
		{
			name: "remove, with mixed-case names",
			m:    mutation(nil, "X-Multi", "x-absent"),
			want: List{{":method", "POST"}, {":path", "/v1/chat/completions"}, {":authority", "proxy"}, {":scheme", "http"},
				{"x-a", "1"}, {"x-envoy-max-retries", "1"}},
		},
		{
			name: "routing and x-envoy headers are ignored, as are pseudo removals",
			m: mutation([]*corev3.HeaderValueOption{
				setHdr(":authority", "evil"), setHdr("host", "evil"), setHdr(":method", "GET"),
				setHdr(":scheme", "https"), setHdr("x-envoy-max-retries", "9"), appendHdr(":path", "/x"),
			}, ":path", "host", "x-envoy-max-retries"),
			want: base(),
		},
		{
			name:  "allow_envoy lets x-envoy headers be set and removed",
			m:     mutation([]*corev3.HeaderValueOption{setHdr("x-envoy-retry-on", "5xx")}, "x-envoy-max-retries"),
			rules: Rules{AllowEnvoy: true},
			want: List{{":method", "POST"}, {":path", "/v1/chat/completions"}, {":authority", "proxy"}, {":scheme", "http"},
				{"x-a", "1"}, {"x-multi", "a"}, {"x-multi", "b"}, {"x-envoy-retry-on", "5xx"}},
		},
		{
			name:  "allow_envoy leaves the routing headers alone",
			m:     mutation([]*corev3.HeaderValueOption{setHdr(":authority", "evil"), setHdr("host", "evil")}, "host"),
			rules: Rules{AllowEnvoy: true},
			want:  base(),
		},
		{
			name: ":path can be set",
			m:    mutation([]*corev3.HeaderValueOption{setHdr(":path", "/v1/responses")}),
			want: List{{":method", "POST"}, {":path", "/v1/responses"}, {":authority", "proxy"}, {":scheme", "http"},
				{"x-a", "1"}, {"x-multi", "a"}, {"x-multi", "b"}, {"x-envoy-max-retries", "1"}},
		},
		{
			name:      ":method can be set with CONTINUE_AND_REPLACE",
			m:         mutation([]*corev3.HeaderValueOption{setHdr(":method", "PUT")}),
			replacing: true,
			want: List{{":method", "PUT"}, {":path", "/v1/chat/completions"}, {":authority", "proxy"}, {":scheme", "http"},
				{"x-a", "1"}, {"x-multi", "a"}, {"x-multi", "b"}, {"x-envoy-max-retries", "1"}},
		},
		{
			name: "value without raw_value sets an empty header (Envoy reads raw_value only)",
			m:    mutation([]*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-a", Value: "ignored"}}}),
			want: List{{":method", "POST"}, {":path", "/v1/chat/completions"}, {":authority", "proxy"}, {":scheme", "http"},
				{"x-a", ""}, {"x-multi", "a"}, {"x-multi", "b"}, {"x-envoy-max-retries", "1"}},
		},
		{
			name: "both value and raw_value is an error",
			m:    mutation([]*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-a", Value: "v", RawValue: []byte("r")}}}),
			err:  true,
		},
		{
			name: "invalid name is an error",
			m:    mutation([]*corev3.HeaderValueOption{setHdr("bad name", "v")}),
			err:  true,
		},
		{
			name: "CR/LF in a value is an error",
			m:    mutation([]*corev3.HeaderValueOption{setHdr("x-a", "v\r\nx-injected: 1")}),
			err:  true,
		},
		{
			name: "invalid name in remove_headers is an error",
			m:    mutation(nil, "bad:name"),
			err:  true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := base()
			err := ApplyMutation(&h, tc.m, tc.replacing, tc.rules, quiet)
			if tc.err {
				if !errors.Is(err, ErrMutation) {
					t.Fatalf("err = %v, want ErrMutation", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, h); d != "" {
				t.Errorf("headers (-want +got):\n%s", d)
			}
		})
	}
}

func TestStatusMutationRules(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct{ set, want string }{{"201", "201"}, {"199", "200"}, {"abc", "200"}} {
		h := List{{":status", "200"}}
		if err := ApplyMutation(&h, mutation([]*corev3.HeaderValueOption{setHdr(":status", tc.set)}), false, Rules{}, quiet); err != nil {
			t.Fatal(err)
		}
		if got, _ := h.Get(":status"); got != tc.want {
			t.Errorf("set :status %s: got %s, want %s", tc.set, got, tc.want)
		}
	}
}

func hv(k, v string) *corev3.HeaderValue { return &corev3.HeaderValue{Key: k, RawValue: []byte(v)} }

func setHdr(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: hv(k, v)}
}

func appendHdr(k, v string) *corev3.HeaderValueOption {
	//lint:ignore SA1019 Envoy's ext_proc filter honours only the deprecated field
	return &corev3.HeaderValueOption{Header: hv(k, v), Append: wrapperspb.Bool(true)}
}

func mutation(set []*corev3.HeaderValueOption, remove ...string) *extprocv3.HeaderMutation {
	return &extprocv3.HeaderMutation{SetHeaders: set, RemoveHeaders: remove}
}
