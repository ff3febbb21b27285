package api

import (
	"context"
	"fmt"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/encoding/protowire"
)

// The bounds of one POST /v1/traces. Decoding protobuf or JSON makes an
// object of every message, and an empty attribute is two bytes on the
// wire (a few once gzipped) but more than a hundred in memory: the body's
// size alone does not bound what a decode allocates. So the body is
// small, the objects are counted before decoding (countTraceObjects), and
// only a few decodes run at once, which bounds the memory the route can
// take to about maxTraceDecodes × (maxTraceObjects × ~200 bytes).
// OpenTelemetry SDKs batch 512 spans and keep 128 attributes, events and
// links per span by default, well inside these.
const (
	maxTraceBodyBytes  = 4 << 20 // raw and inflated
	maxTraceSpans      = 10_000  // in one request
	maxTraceAttributes = 128     // per span, event, link, resource or scope
	maxTraceEvents     = 128     // per span
	maxTraceLinks      = 128     // per span
	maxTraceValues     = 1024    // in one array or key-value list value
	maxTraceDepth      = 8       // arrays and lists nested in a value
	maxTraceObjects    = 200_000 // messages of any kind in one request
	maxTraceDecodes    = 4       // decodes at once, in the whole process
)

// traceDecodes bounds the decodes in flight. It is the process's, not one
// server's: the memory it protects is the process's.
var traceDecodes = make(chan struct{}, maxTraceDecodes)

// traceDecodeWait is how long a request waits for a decode slot before
// it is answered 503 with Retry-After (which OTLP exporters honour).
var traceDecodeWait = time.Second

// acquireTraceDecode takes a decode slot; false: none came in time.
func acquireTraceDecode(ctx context.Context) bool {
	select {
	case traceDecodes <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(traceDecodeWait)
	defer t.Stop()
	select {
	case traceDecodes <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

func releaseTraceDecode() { <-traceDecodes }

// otlpMsg names the OTLP messages whose fields countTraceObjects follows.
type otlpMsg int

const (
	msgRequest otlpMsg = iota
	msgResourceSpans
	msgResource
	msgScopeSpans
	msgScope
	msgSpan
	msgEvent
	msgLink
	msgKeyValue
	msgAnyValue
	msgArray  // ArrayValue
	msgKVList // KeyValueList
	msgLeaf   // a message without messages inside (Status, EntityRef)
)

// otlpField is a message-typed field: what it holds, how it is named in
// errors, how many of it one parent may hold (-1: any number, 0: it is
// not repeated) and what they are.
type otlpField struct {
	msg  otlpMsg
	name string
	max  int
	what string
}

const unbounded = -1

// otlpFields are the message-typed fields of the OTLP trace messages
// (opentelemetry-proto v1); other fields are scalars, strings or bytes.
var otlpFields = map[otlpMsg]map[protowire.Number]otlpField{
	msgRequest:       {1: {msgResourceSpans, "resourceSpans", unbounded, ""}},
	msgResourceSpans: {1: {msgResource, "resource", 0, ""}, 2: {msgScopeSpans, "scopeSpans", unbounded, ""}},
	msgResource:      {1: {msgKeyValue, "attributes", maxTraceAttributes, "attributes"}, 3: {msgLeaf, "entityRefs", maxTraceAttributes, "entity refs"}},
	msgScopeSpans:    {1: {msgScope, "scope", 0, ""}, 2: {msgSpan, "spans", unbounded, ""}},
	msgScope:         {3: {msgKeyValue, "attributes", maxTraceAttributes, "attributes"}},
	msgSpan: {9: {msgKeyValue, "attributes", maxTraceAttributes, "attributes"}, 11: {msgEvent, "events", maxTraceEvents, "events"},
		13: {msgLink, "links", maxTraceLinks, "links"}, 15: {msgLeaf, "status", 0, ""}},
	msgEvent:    {3: {msgKeyValue, "attributes", maxTraceAttributes, "attributes"}},
	msgLink:     {4: {msgKeyValue, "attributes", maxTraceAttributes, "attributes"}},
	msgKeyValue: {2: {msgAnyValue, "value", 0, ""}},
	msgAnyValue: {5: {msgArray, "arrayValue", 0, ""}, 6: {msgKVList, "kvlistValue", 0, ""}},
	msgArray:    {1: {msgAnyValue, "values", maxTraceValues, "values"}},
	msgKVList:   {1: {msgKeyValue, "values", maxTraceValues, "values"}},
}

// traceCounter walks a protobuf ExportTraceServiceRequest without
// decoding it, counting what a decode would make.
type traceCounter struct{ objects, spans int }

// countTraceObjects refuses a protobuf body that would decode into more
// objects than the bounds above, naming the field where a bound is
// crossed; a malformed body is left to proto.Unmarshal's error.
func countTraceObjects(body []byte) error {
	var c traceCounter
	return c.walk(msgRequest, body, "", 0)
}

func (c *traceCounter) walk(m otlpMsg, b []byte, at string, depth int) error {
	fields := otlpFields[m]
	counts := map[protowire.Number]int{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil // malformed: proto.Unmarshal says so
		}
		b = b[n:]
		f, isMsg := fields[num]
		if !isMsg || typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return nil
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil
		}
		b = b[n:]
		i := counts[num]
		counts[num]++
		path := at + f.name
		if f.max != 0 {
			if f.max > 0 && i >= f.max {
				return fmt.Errorf("%s: more than %d %s", path, f.max, f.what)
			}
			path = fmt.Sprintf("%s[%d]", path, i)
		}
		if f.msg == msgSpan {
			if c.spans++; c.spans > maxTraceSpans {
				return fmt.Errorf("%s: more than %d spans in one request: send smaller batches", path, maxTraceSpans)
			}
		}
		if c.objects++; c.objects > maxTraceObjects {
			return fmt.Errorf("%s: more than %d objects (spans, attributes, values) in one request: send smaller batches", path, maxTraceObjects)
		}
		d := depth
		if f.msg == msgArray || f.msg == msgKVList {
			if d++; d > maxTraceDepth {
				return fmt.Errorf("%s: values nested more than %d deep", path, maxTraceDepth)
			}
		}
		if err := c.walk(f.msg, v, path+".", d); err != nil {
			return err
		}
	}
	return nil
}

// countJSONObjects bounds a JSON body's objects before protojson decodes
// it: every OTLP message is a JSON object, so the '{' outside strings
// bound what the decode makes. The bounds by field are checked on the
// decoded request (checkTraceLimits).
func countJSONObjects(body []byte) error {
	n, inString, escaped := 0, false, false
	for _, c := range body {
		switch {
		case escaped:
			escaped = false
		case inString:
			escaped = c == '\\'
			inString = c != '"'
		case c == '"':
			inString = true
		case c == '{':
			if n++; n > maxTraceObjects {
				return fmt.Errorf("more than %d objects (spans, attributes, values) in one request: send smaller batches", maxTraceObjects)
			}
		}
	}
	return nil
}

// checkTraceLimits applies the bounds by field to a decoded request
// (JSON's; protobuf's were checked before decoding, and pass again).
func checkTraceLimits(req *coltracepb.ExportTraceServiceRequest) error {
	attrs := func(at string, kvs []*commonpb.KeyValue) error {
		if len(kvs) > maxTraceAttributes {
			return fmt.Errorf("%sattributes: more than %d attributes", at, maxTraceAttributes)
		}
		return nil
	}
	spans := 0
	for i, rs := range req.GetResourceSpans() {
		if err := attrs(fmt.Sprintf("resourceSpans[%d].resource.", i), rs.GetResource().GetAttributes()); err != nil {
			return err
		}
		for j, ss := range rs.GetScopeSpans() {
			if err := attrs(fmt.Sprintf("resourceSpans[%d].scopeSpans[%d].scope.", i, j), ss.GetScope().GetAttributes()); err != nil {
				return err
			}
			for k, sp := range ss.GetSpans() {
				at := fmt.Sprintf("resourceSpans[%d].scopeSpans[%d].spans[%d].", i, j, k)
				if spans++; spans > maxTraceSpans {
					return fmt.Errorf("%s: more than %d spans in one request: send smaller batches", at[:len(at)-1], maxTraceSpans)
				}
				if err := attrs(at, sp.GetAttributes()); err != nil {
					return err
				}
				switch {
				case len(sp.GetEvents()) > maxTraceEvents:
					return fmt.Errorf("%sevents: more than %d events", at, maxTraceEvents)
				case len(sp.GetLinks()) > maxTraceLinks:
					return fmt.Errorf("%slinks: more than %d links", at, maxTraceLinks)
				}
				for e, ev := range sp.GetEvents() {
					if err := attrs(fmt.Sprintf("%sevents[%d].", at, e), ev.GetAttributes()); err != nil {
						return err
					}
				}
				for l, ln := range sp.GetLinks() {
					if err := attrs(fmt.Sprintf("%slinks[%d].", at, l), ln.GetAttributes()); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}
