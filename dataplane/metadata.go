package dataplane

import (
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// dynamicMetadata is a request's untyped dynamic metadata (StreamInfo's
// filter_metadata), by namespace, as far as ext_proc filters read and write
// it. Envoy's upstream HTTP filters see the downstream request's StreamInfo
// (router/upstream_request.cc, UpstreamFilterManager::streamInfo returns
// parent_.callbacks()->streamInfo()), so what the router-level filter
// receives, every attempt's upstream-level filter can forward.
type dynamicMetadata struct {
	mu sync.Mutex
	ns map[string]*structpb.Struct
}

// receive is ext_proc's setDynamicMetadata (ext_proc.cc): each top-level
// field of a reply's dynamic_metadata is a namespace; only the namespaces the
// filter lists in metadata_options.receiving_namespaces.untyped are kept (none
// when it lists none), and each is merged into what the request already has
// (StreamInfo::setDynamicMetadata, a protobuf MergeFrom: a field set again
// replaces the old value).
func (d *dynamicMetadata) receive(resp *extprocv3.ProcessingResponse, receiving []string) {
	dm := resp.GetDynamicMetadata()
	// Only a reply of a known kind gets this far in onReceiveMessage.
	if dm == nil || len(receiving) == 0 || resp.GetResponse() == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, name := range receiving {
		v, ok := dm.GetFields()[name]
		if !ok {
			continue
		}
		if d.ns == nil {
			d.ns = map[string]*structpb.Struct{}
		}
		cur := d.ns[name]
		if cur == nil {
			cur = &structpb.Struct{}
			d.ns[name] = cur
		}
		// A value that is not a struct merges as an empty one, as Envoy's
		// struct_value() of another kind is the default instance.
		proto.Merge(cur, v.GetStructValue())
	}
}

// forward is ext_proc's addDynamicMetadata (ext_proc.cc): the request's
// metadata of the namespaces in metadata_options.forwarding_namespaces.untyped
// goes in a message's metadata_context; every message carries one, empty when
// nothing is forwarded.
func (d *dynamicMetadata) forward(forwarding []string) *corev3.Metadata {
	md := &corev3.Metadata{}
	if d == nil || len(forwarding) == 0 {
		return md
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, name := range forwarding {
		if s, ok := d.ns[name]; ok {
			if md.FilterMetadata == nil {
				md.FilterMetadata = map[string]*structpb.Struct{}
			}
			md.FilterMetadata[name] = proto.Clone(s).(*structpb.Struct)
		}
	}
	return md
}
