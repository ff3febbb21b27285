// Package dataplane is Tollgate's local data plane: a plain Go HTTP reverse
// proxy that stands in for Envoy where Envoy cannot run (`tollgate dev` and
// the end-to-end tests). It drives the processor over a real gRPC
// ExternalProcessor.Process stream as Envoy's ext_proc filter does with
// Tollgate's configurations: request headers, a BUFFERED request body,
// response headers and a BUFFERED response body that a mode_override can
// turn STREAMED; header mutations in raw_value only, body mutations with a
// correct content-length, immediate responses, the route picked on arrival
// and re-picked after clear_route_cache with a header mutation, and the
// request's dynamic metadata received and forwarded by namespace.
//
// It also plays the part of Envoy's router that Tollgate's routes use:
// Envoy's removal of internal headers from external requests, retries
// driven by the x-envoy-* retry headers with jittered exponential back-off,
// an upstream-level ext_proc stream once per attempt, and fallback chain
// routes whose retries move across priority levels (previous_priorities). It knows the
// processor only through those streams and imports nothing else from the
// repository.
//
// The specification — one request step by step, where this follows Envoy
// including its surprises, and every remaining difference with the reason it
// cannot let a defect pass here and fail behind Envoy — is
// docs/dataplane.md. Change the two together.
package dataplane
