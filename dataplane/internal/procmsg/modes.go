// Package procmsg is the ext_proc protocol as the data plane speaks it, as
// data: the processing modes and how a mode_override changes them
// (modes.go), the messages sent for each phase, and how a reply is read
// (messages.go). The streams that carry them stay in the data plane.
package procmsg

import (
	"errors"
	"fmt"

	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
)

// ConfiguredMode is the filter's processing_mode in production: request and
// response headers SEND, both bodies BUFFERED, trailers SKIP.
var ConfiguredMode = &filterv3.ProcessingMode{
	RequestHeaderMode:   filterv3.ProcessingMode_SEND,
	ResponseHeaderMode:  filterv3.ProcessingMode_SEND,
	RequestBodyMode:     filterv3.ProcessingMode_BUFFERED,
	ResponseBodyMode:    filterv3.ProcessingMode_BUFFERED,
	RequestTrailerMode:  filterv3.ProcessingMode_SKIP,
	ResponseTrailerMode: filterv3.ProcessingMode_SKIP,
}

// ErrUnsupportedMode is returned for a mode_override this data plane cannot
// reproduce; it fails the request like any processor error so the processor
// author notices in development.
var ErrUnsupportedMode = errors.New("ext_proc: unsupported body mode in mode_override")

// Modes is what is left of the processing mode for the phases still to
// come. Request headers are always sent, request trailers never (see the
// data plane's package doc); response trailers when a mode_override asks
// for them.
type Modes struct {
	ReqBody     filterv3.ProcessingMode_BodySendMode
	RespHeader  filterv3.ProcessingMode_HeaderSendMode
	RespBody    filterv3.ProcessingMode_BodySendMode
	RespTrailer filterv3.ProcessingMode_HeaderSendMode
}

// DefaultModes are the router-level filter's configured modes.
func DefaultModes() Modes { return ModesOf(ConfiguredMode) }

// ModesOf is the start of a filter with the configured processing_mode.
func ModesOf(configured *filterv3.ProcessingMode) Modes {
	return Modes{
		ReqBody:     configured.GetRequestBodyMode(),
		RespHeader:  configured.GetResponseHeaderMode(),
		RespBody:    configured.GetResponseBodyMode(),
		RespTrailer: configured.GetResponseTrailerMode(),
	}
}

// Override applies a mode_override the way current Envoy does
// (effectiveModeOverride): the configured mode is the base, header and trailer
// modes of the override count only when not DEFAULT, and both body modes are
// always taken from the override. So an override that only names
// response_body_mode also sets request_body_mode to NONE; it matters only when
// sent in reply to request_headers.
func (m *Modes) Override(o *filterv3.ProcessingMode) error {
	return m.OverrideFrom(ConfiguredMode, o)
}

// OverrideFrom is Override for a filter whose processing_mode is configured.
func (m *Modes) OverrideFrom(configured, o *filterv3.ProcessingMode) error {
	for _, b := range []filterv3.ProcessingMode_BodySendMode{o.GetRequestBodyMode(), o.GetResponseBodyMode()} {
		switch b {
		case filterv3.ProcessingMode_NONE, filterv3.ProcessingMode_STREAMED,
			filterv3.ProcessingMode_BUFFERED, filterv3.ProcessingMode_BUFFERED_PARTIAL:
		default:
			return fmt.Errorf("%w: %s", ErrUnsupportedMode, b)
		}
	}
	m.RespHeader = configured.GetResponseHeaderMode()
	if o.GetResponseHeaderMode() != filterv3.ProcessingMode_DEFAULT {
		m.RespHeader = o.GetResponseHeaderMode()
	}
	m.RespTrailer = configured.GetResponseTrailerMode()
	if o.GetResponseTrailerMode() != filterv3.ProcessingMode_DEFAULT {
		m.RespTrailer = o.GetResponseTrailerMode()
	}
	m.ReqBody = o.GetRequestBodyMode()
	m.RespBody = o.GetResponseBodyMode()
	return nil
}

// RemoveResponseContentLength is Envoy's shouldRemoveContentLength, evaluated
// when the response headers enter the filter (before the processor answers
// them): in these modes the filter cannot promise the length stays right.
func (m Modes) RemoveResponseContentLength() bool {
	switch m.RespBody {
	case filterv3.ProcessingMode_STREAMED, filterv3.ProcessingMode_BUFFERED_PARTIAL:
		return true
	case filterv3.ProcessingMode_BUFFERED:
		return m.RespHeader == filterv3.ProcessingMode_SKIP
	}
	return false
}
