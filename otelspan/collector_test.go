package otelspan_test

import (
	"context"
	"net"
	"strconv"
	"testing"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
)

// collector is the OpenTelemetry Collector's own OTLP receiver, HTTP only,
// on a loopback port, its traces gathered by a sink consumer: what a
// collector's pipeline would get from Tollgate, decoded by the collector's
// code rather than ours.
type collector struct {
	url  string
	sink *consumertest.TracesSink
}

func startCollector(t *testing.T) *collector {
	t.Helper()
	f := otlpreceiver.NewFactory()
	sink := new(consumertest.TracesSink)
	// The receiver takes an address, not a listener: find a free port,
	// and try again should another process take it in between.
	for attempt := 0; ; attempt++ {
		addr := freeAddr(t)
		cfg := f.CreateDefaultConfig().(*otlpreceiver.Config)
		cfg.Protocols.GRPC = configoptional.None[configgrpc.ServerConfig]()
		cfg.Protocols.HTTP.GetOrInsertDefault().ServerConfig.NetAddr.Endpoint = addr
		r, err := f.CreateTraces(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, sink)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
			if attempt < 3 {
				continue
			}
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
		return &collector{url: "http://" + addr, sink: sink}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// spans is every span received, by its tollgate.request_id attribute.
func (c *collector) spans(t *testing.T) map[string]receivedSpan {
	t.Helper()
	out := map[string]receivedSpan{}
	for _, td := range c.sink.AllTraces() {
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			rs := td.ResourceSpans().At(i)
			for j := 0; j < rs.ScopeSpans().Len(); j++ {
				ss := rs.ScopeSpans().At(j)
				for k := 0; k < ss.Spans().Len(); k++ {
					sp := ss.Spans().At(k)
					id, _ := sp.Attributes().Get("tollgate.request_id")
					if _, dup := out[id.Str()]; dup {
						t.Errorf("two spans for request %s", id.Str())
					}
					out[id.Str()] = receivedSpan{Span: sp, resource: rs, scope: ss.Scope().Name()}
				}
			}
		}
	}
	return out
}

type receivedSpan struct {
	ptrace.Span
	resource ptrace.ResourceSpans
	scope    string
}

// attrs is the span's attributes as Go values (string, int64, float64,
// bool).
func (s receivedSpan) attrs() map[string]any {
	return s.Attributes().AsRaw()
}
