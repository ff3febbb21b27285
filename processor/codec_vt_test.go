//go:build vtprotobuf

package processor

import extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

// Built with -tags vtprotobuf, the replies take the vtproto path.
var _ vtMarshaler = (*extprocv3.ProcessingResponse)(nil)
