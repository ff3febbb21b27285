package dataplane

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// Why the data plane itself tore a processor stream down; an error from Recv
// is attributed with this, not guessed from the gRPC status.
const (
	stopNone int32 = iota
	stopMessageTimeout
	stopClientGone
	stopDone
)

var (
	errMessageTimeout  = errors.New("ext_proc: message_timeout exceeded")
	errClientGone      = errors.New("client went away")
	errProcessorClosed = errors.New("ext_proc: processor closed the stream with OK")
	errSpurious        = errors.New("ext_proc: reply of the wrong kind for this phase")
)

// streamHardStop is how long after the advertised deadline the client side of
// a stream is torn down at the latest. The processor's own timer (from
// grpc-timeout) fires first, so it sees DeadlineExceeded rather than a
// cancellation racing it.
const streamHardStop = 2 * time.Second

// deadlineCtx advertises a deadline to gRPC, which sends it as grpc-timeout
// so the processor's stream context expires at that instant, while its Done
// channel (the embedded context) only closes streamHardStop later. Value and
// Done come from the embedded context, so context.WithCancel children still
// hook onto it without a goroutine.
type deadlineCtx struct {
	context.Context
	deadline time.Time
}

func (c deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }

// procStream is one ext_proc stream: one per HTTP request, as in Envoy.
type procStream struct {
	stream    extprocv3.ExternalProcessor_ProcessClient
	openErr   error
	cancel    context.CancelFunc
	stopWatch func() bool
	clientCtx context.Context // the request's context: done once the client is gone
	timer     *time.Timer
	timeout   time.Duration
	stopped   atomic.Int32
	sent      int
}

// openProcStream starts the stream. Its context does not inherit the request
// context's cancellation, because the data plane chooses how the stream ends:
// a client that goes away cancels it (watched with context.AfterFunc, no
// goroutine), the end of the request half-closes and resets it, and a route
// timeout lets it run into its advertised deadline. Errors are kept in
// openErr and surface on the first exchange, which is where Envoy notices
// them too.
func openProcStream(rctx context.Context, client extprocv3.ExternalProcessorClient, advertised time.Time, timeout time.Duration) *procStream {
	cctx, cancel := context.WithDeadline(context.WithoutCancel(rctx), advertised.Add(streamHardStop))
	ps := &procStream{cancel: cancel, timeout: timeout, clientCtx: rctx}
	ps.stopWatch = context.AfterFunc(rctx, func() { ps.stop(stopClientGone) })
	// The message timer covers stream creation too: a processor that cannot
	// be reached must not hold the request longer than one message_timeout.
	ps.timer = time.AfterFunc(timeout, func() { ps.stop(stopMessageTimeout) })
	stream, err := client.Process(deadlineCtx{cctx, advertised})
	if err != nil {
		ps.openErr = ps.classify(err)
		return ps
	}
	ps.stream = stream
	return ps
}

// stop records the first reason and cancels the stream; later calls only
// cancel (a no-op by then).
func (ps *procStream) stop(reason int32) {
	ps.stopped.CompareAndSwap(stopNone, reason)
	ps.cancel()
}

// exchange sends one message and waits for its reply, for at most the
// message timeout (measured from the send, like Envoy's message timer).
func (ps *procStream) exchange(req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
	if ps.openErr != nil {
		return nil, ps.openErr
	}
	if ps.sent > 0 {
		ps.timer.Reset(ps.timeout)
	}
	ps.sent++
	resp, err := ps.roundTrip(req)
	fired := !ps.timer.Stop()
	if err != nil {
		return nil, ps.classify(err)
	}
	if fired && ps.stopped.Load() != stopNone {
		return nil, ps.classify(context.Canceled)
	}
	return resp, nil
}

func (ps *procStream) roundTrip(req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
	if err := ps.stream.Send(req); err != nil {
		if err != io.EOF {
			return nil, err
		}
		// io.EOF from Send means the stream is already over; Recv has
		// its real status.
		if _, err = ps.stream.Recv(); err == nil {
			err = errSpurious
		}
		return nil, err
	}
	for {
		resp, err := ps.stream.Recv()
		if err != nil {
			return nil, err
		}
		if resp.GetOverrideMessageTimeout() != nil {
			// Envoy drops such a message entirely and keeps its timer
			// unless max_message_timeout is configured, which it is not.
			continue
		}
		return resp, nil
	}
}

func (ps *procStream) classify(err error) error {
	switch ps.stopped.Load() {
	case stopMessageTimeout:
		return errMessageTimeout
	case stopClientGone:
		return errClientGone
	}
	if err == io.EOF {
		return errProcessorClosed
	}
	return err
}

// close ends the stream the way Envoy's ext_proc filter does by default when
// it is done with a request: half-close, then reset. The processor sees
// io.EOF or codes.Canceled on its next Recv.
func (ps *procStream) close() {
	ps.timer.Stop()
	ps.stopWatch()
	if ps.clientCtx.Err() != nil {
		// The client went away and the watcher may not have run yet:
		// Envoy resets the stream then, it never half-closes it.
		ps.stop(stopClientGone)
		return
	}
	if ps.stream != nil {
		_ = ps.stream.CloseSend()
	}
	ps.stop(stopDone)
}

// reset cancels the stream without half-closing it first, for requests that
// end abnormally: the processor sees codes.Canceled, never a clean io.EOF.
func (ps *procStream) reset() {
	ps.timer.Stop()
	ps.stopWatch()
	ps.stop(stopDone)
}

// expire abandons the stream without cancelling it, so the processor's stream
// context runs into the advertised deadline and reports DeadlineExceeded; the
// client side is released streamHardStop later by its own context.
func (ps *procStream) expire() {
	ps.timer.Stop()
	ps.stopWatch()
}
