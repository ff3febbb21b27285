package dataplane

import (
	"errors"
	"fmt"

	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
)

// configuredMode is the filter's processing_mode in production: request and
// response headers SEND, both bodies BUFFERED, trailers SKIP.
var configuredMode = &filterv3.ProcessingMode{
	RequestHeaderMode:   filterv3.ProcessingMode_SEND,
	ResponseHeaderMode:  filterv3.ProcessingMode_SEND,
	RequestBodyMode:     filterv3.ProcessingMode_BUFFERED,
	ResponseBodyMode:    filterv3.ProcessingMode_BUFFERED,
	RequestTrailerMode:  filterv3.ProcessingMode_SKIP,
	ResponseTrailerMode: filterv3.ProcessingMode_SKIP,
}

// errUnsupportedMode is returned for a mode_override this data plane cannot
// reproduce; it fails the request like any processor error so the processor
// author notices in development.
var errUnsupportedMode = errors.New("ext_proc: unsupported body mode in mode_override")

// phaseModes is what is left of the processing mode for the phases still to
// come. Request headers are always sent, request trailers never (see
// doc.go); response trailers when a mode_override asks for them.
type phaseModes struct {
	reqBody     filterv3.ProcessingMode_BodySendMode
	respHeader  filterv3.ProcessingMode_HeaderSendMode
	respBody    filterv3.ProcessingMode_BodySendMode
	respTrailer filterv3.ProcessingMode_HeaderSendMode
}

func defaultModes() phaseModes { return modesOf(configuredMode) }

func modesOf(configured *filterv3.ProcessingMode) phaseModes {
	return phaseModes{
		reqBody:     configured.GetRequestBodyMode(),
		respHeader:  configured.GetResponseHeaderMode(),
		respBody:    configured.GetResponseBodyMode(),
		respTrailer: configured.GetResponseTrailerMode(),
	}
}

// override applies a mode_override the way current Envoy does
// (effectiveModeOverride): the configured mode is the base, header and trailer
// modes of the override count only when not DEFAULT, and both body modes are
// always taken from the override. So an override that only names
// response_body_mode also sets request_body_mode to NONE; it matters only when
// sent in reply to request_headers.
func (m *phaseModes) override(o *filterv3.ProcessingMode) error {
	return m.overrideFrom(configuredMode, o)
}

// overrideFrom is override for a filter whose processing_mode is configured.
func (m *phaseModes) overrideFrom(configured, o *filterv3.ProcessingMode) error {
	for _, b := range []filterv3.ProcessingMode_BodySendMode{o.GetRequestBodyMode(), o.GetResponseBodyMode()} {
		switch b {
		case filterv3.ProcessingMode_NONE, filterv3.ProcessingMode_STREAMED,
			filterv3.ProcessingMode_BUFFERED, filterv3.ProcessingMode_BUFFERED_PARTIAL:
		default:
			return fmt.Errorf("%w: %s", errUnsupportedMode, b)
		}
	}
	m.respHeader = configured.GetResponseHeaderMode()
	if o.GetResponseHeaderMode() != filterv3.ProcessingMode_DEFAULT {
		m.respHeader = o.GetResponseHeaderMode()
	}
	m.respTrailer = configured.GetResponseTrailerMode()
	if o.GetResponseTrailerMode() != filterv3.ProcessingMode_DEFAULT {
		m.respTrailer = o.GetResponseTrailerMode()
	}
	m.reqBody = o.GetRequestBodyMode()
	m.respBody = o.GetResponseBodyMode()
	return nil
}

// removeResponseContentLength is Envoy's shouldRemoveContentLength, evaluated
// when the response headers enter the filter (before the processor answers
// them): in these modes the filter cannot promise the length stays right.
func (m phaseModes) removeResponseContentLength() bool {
	switch m.respBody {
	case filterv3.ProcessingMode_STREAMED, filterv3.ProcessingMode_BUFFERED_PARTIAL:
		return true
	case filterv3.ProcessingMode_BUFFERED:
		return m.respHeader == filterv3.ProcessingMode_SKIP
	}
	return false
}
