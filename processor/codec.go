package processor

import (
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers gRPC's codec first: it is the fallback
	"google.golang.org/grpc/mem"
)

// gRPC's "proto" codec is replaced, for every gRPC server and client in a
// binary that links the processor, by one that marshals the ext_proc
// messages with the code go-control-plane generates for them (vtproto:
// SizeVT and MarshalToSizedBufferVTStrict, straight-line code instead of
// protobuf-go's table-driven reflection) and hands every other message to
// gRPC's own codec. go-control-plane compiles those methods only under
// the vtprotobuf build tag (`go build -tags vtprotobuf`); without it every
// message takes the fallback and nothing changes.
//
// Unmarshalling always goes to gRPC's codec: go-control-plane ships no
// UnmarshalVT for the ext_proc messages. protobuf-go copies bytes fields
// out of the receive buffer (which gRPC reuses), so a received message's
// bytes belong to it alone (views.go relies on that).

func init() {
	encoding.RegisterCodecV2(vtCodec{fallback: encoding.GetCodecV2(codecName)})
}

const codecName = "proto"

// vtMarshaler is what go-control-plane's vtproto code gives a message.
type vtMarshaler interface {
	SizeVT() int
	MarshalToSizedBufferVTStrict(dAtA []byte) (int, error)
}

type vtCodec struct{ fallback encoding.CodecV2 }

func (c vtCodec) Name() string { return codecName }

// Marshal encodes v into one buffer, taken from gRPC's pool when it is
// large enough to be worth pooling (as gRPC's codec does): gRPC frees it
// once the frame is written.
func (c vtCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(vtMarshaler)
	if !ok {
		return c.fallback.Marshal(v)
	}
	size := m.SizeVT()
	if mem.IsBelowBufferPoolingThreshold(size) {
		buf := make([]byte, size)
		n, err := m.MarshalToSizedBufferVTStrict(buf)
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(buf[size-n:])}, nil
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	n, err := m.MarshalToSizedBufferVTStrict((*buf)[:size])
	if err != nil {
		pool.Put(buf)
		return nil, err
	}
	if n != size { // the message changed between SizeVT and now: no torn frame
		pool.Put(buf)
		return c.fallback.Marshal(v)
	}
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

func (c vtCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return c.fallback.Unmarshal(data, v)
}
