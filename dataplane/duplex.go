package dataplane

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/tollgate-dev/tollgate/dataplane/internal/headers"
	"github.com/tollgate-dev/tollgate/dataplane/internal/procmsg"
)

// The response body in FULL_DUPLEX_STREAMED mode, which a processor asks for
// in its response-headers reply (mode_override, with response trailers
// SEND, as Envoy requires of this mode) when it rewrites a stream with
// look-ahead: a translated fallback owes bytes that are known only once the
// upstream body is over, and STREAMED cannot send them when trailers end the
// body (trailers.go: the last chunk's reply went before the trailers came,
// and a trailers reply carries no body). As Envoy's ext_proc filter does
// (processing_mode.proto, FULL_DUPLEX_STREAMED; ext_proc.cc and
// processor_state.cc):
//   - each chunk of the upstream body goes to the processor as it arrives,
//     without waiting for a reply; the last one with end_of_stream, or, when
//     the response has trailers, a response_trailers message after the last
//     chunk (which then has no end_of_stream) says the body is complete;
//   - the processor answers with any number of response_body replies whose
//     body_mutation is a streamed_response, and their bytes go to the client
//     as they arrive; the one with end_of_stream ends the body;
//   - with trailers, the processor's response_trailers reply, after its last
//     body reply, mutates the trailers and ends the response;
//   - the message timer runs from each message sent until a reply comes.
// Once the headers went downstream a processor failure resets the client
// stream (Envoy fails open in this mode only before the first chunk), as
// does an upstream body that breaks.

// duplexSent is how the sending half ended.
type duplexSent struct {
	trailers headers.List // sent as response_trailers; nil when the body ended with end_of_stream
	upErr    error        // the upstream body broke
	sendErr  error        // the processor stream would not take a message
}

type procReply struct {
	resp *extprocv3.ProcessingResponse
	err  error
}

func (x *exchange) duplexStreamed(rsp *response) {
	x.writeHeaders(rsp.hdrs)
	x.flush()
	ps := x.proc
	// The sending half reads the upstream body on its own goroutine; the
	// metadata it forwards is the request's as the body phase starts.
	meta := x.meta.forward(x.p.cfg.ForwardingNamespaces)
	sent := make(chan duplexSent, 1)
	go x.duplexSend(rsp, ps, meta, sent)
	stop := make(chan struct{})
	replies := make(chan procReply)
	go func() {
		for {
			resp, err := ps.recv()
			select {
			case replies <- procReply{resp, err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	var end *duplexSent
	waitSent := func() duplexSent {
		if end == nil {
			s := <-sent
			end = &s
		}
		return *end
	}
	defer func() {
		close(stop)
		if end == nil {
			// Unblock a read the sending half may be in, then let it go.
			if rsp.body != nil {
				_ = rsp.body.Close()
			}
			waitSent()
		}
	}()
	for {
		select {
		case s := <-sent:
			end, sent = &s, nil
			switch {
			case s.upErr != nil:
				x.upstreamBodyFailed(s.upErr)
				return
			case s.sendErr != nil:
				x.duplexFailed(ps.classify(s.sendErr))
				return
			}
		case r := <-replies:
			if r.err != nil {
				x.duplexFailed(ps.classify(r.err))
				return
			}
			x.meta.receive(r.resp, x.p.cfg.ReceivingNamespaces)
			switch {
			case procmsg.ReplyMatches(r.resp, procmsg.PhaseResponseBody):
				sb := procmsg.Common(r.resp).GetBodyMutation().GetStreamedResponse()
				if sb == nil {
					x.duplexFailed(fmt.Errorf("%w: a response_body reply without streamed_response in FULL_DUPLEX_STREAMED", errSpurious))
					return
				}
				if len(sb.GetBody()) > 0 {
					if _, err := x.w.Write(sb.GetBody()); err != nil {
						return
					}
				}
				x.flush()
				if sb.GetEndOfStream() {
					return
				}
			case procmsg.ReplyMatches(r.resp, procmsg.PhaseResponseTrailers):
				s := waitSent() // the processor answered them: they were sent
				tr := s.trailers
				if tr == nil {
					x.duplexFailed(fmt.Errorf("%w: a response_trailers reply to a response without trailers", errSpurious))
					return
				}
				if m := r.resp.GetResponseTrailers().GetHeaderMutation(); m != nil {
					if err := headers.ApplyMutation(&tr, m, false, x.p.rules, x.logger()); err != nil {
						x.duplexFailed(err)
						return
					}
				}
				x.writeTrailers(tr)
				return
			default:
				x.duplexFailed(fmt.Errorf("%w: got %T", errSpurious, r.resp.GetResponse()))
				return
			}
		}
	}
}

// duplexSend is the sending half: every chunk of the upstream body, then
// the trailers when there are.
func (x *exchange) duplexSend(rsp *response, ps *procStream, meta *corev3.Metadata, sent chan<- duplexSent) {
	send := func(req *extprocv3.ProcessingRequest) error {
		req.MetadataContext = meta
		return ps.send(req)
	}
	if rsp.local != nil {
		sent <- duplexSent{sendErr: send(procmsg.ResponseBody(bytes.Clone(rsp.local), true))}
		return
	}
	buf := getChunk()
	defer putChunk(buf)
	for {
		n, err := rsp.body.Read(*buf)
		if n > 0 {
			x.touch()
		}
		eos := err == io.EOF
		var tr headers.List
		if eos {
			tr = x.trailersOf(rsp)
		}
		if n > 0 || (eos && tr == nil) {
			if serr := send(procmsg.ResponseBody(bytes.Clone((*buf)[:n]), eos && tr == nil)); serr != nil {
				sent <- duplexSent{sendErr: serr}
				return
			}
		}
		switch {
		case eos && tr != nil:
			sent <- duplexSent{trailers: tr, sendErr: send(procmsg.ResponseTrailers(tr))}
			return
		case eos:
			sent <- duplexSent{}
			return
		case err != nil:
			sent <- duplexSent{upErr: err}
			return
		}
	}
}

// duplexFailed ends a duplex response whose processor failed: the headers
// are downstream already, so the client stream is reset.
func (x *exchange) duplexFailed(err error) {
	if errors.Is(err, errClientGone) || x.r.Context().Err() != nil {
		x.closeProcessor()
		return
	}
	x.logger().Error("ext_proc: processor failed during a FULL_DUPLEX_STREAMED response body; resetting the client stream", "error", err)
	x.abort()
}

// send and recv are the two halves of exchange for FULL_DUPLEX_STREAMED,
// used from two goroutines (gRPC allows one Send and one Recv at a time):
// the message timer is armed by each message sent and stopped by each
// reply.
func (ps *procStream) send(req *extprocv3.ProcessingRequest) error {
	if ps.openErr != nil {
		return ps.openErr
	}
	ps.mu.Lock()
	ps.timer.Reset(ps.timeout)
	ps.sent++
	ps.mu.Unlock()
	return ps.stream.Send(req)
}

func (ps *procStream) recv() (*extprocv3.ProcessingResponse, error) {
	if ps.openErr != nil {
		return nil, ps.openErr
	}
	for {
		resp, err := ps.stream.Recv()
		ps.mu.Lock()
		ps.timer.Stop()
		ps.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if resp.GetOverrideMessageTimeout() != nil {
			continue // dropped, as exchange does
		}
		return resp, nil
	}
}
