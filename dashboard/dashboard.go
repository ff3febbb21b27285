// Package dashboard serves Tollgate's web dashboard: a request explorer
// (filters, pages, a request's detail with its bodies, sessions as trees),
// analytics (cost, volume, errors, latency, TTFT, tokens, cache) and alert
// rules, all drawn in the browser from the HTTP query API (package api) on
// the same origin.
//
// The front end is TypeScript under web/, bundled with esbuild into dist/,
// which is committed and embedded here: building, running and testing
// Tollgate need no Node.js. `make dashboard` rebuilds dist/ after a change
// to web/ (a test fails while dist/ is older than its sources).
//
// Mount Handler at "/" beside the API at "/v1/":
//
//	mux.Handle("/v1/", apiHandler)
//	mux.Handle("/", dashboard.Handler())
//
// The dashboard itself holds no data: its files may be public, and all
// data comes through the API and its protection (API key or loopback).
package dashboard

import (
	"embed"
	"io/fs"
	"net/http"
	"sync"
)

// The built front end (web/build.mjs writes it). SOURCES.sha256, beside
// these, is not served.
//
//go:embed dist/index.html dist/assets
var dist embed.FS

var loadSite = sync.OnceValues(func() (*site, error) {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		return nil, err
	}
	return newSite(sub)
})

// Handler serves the dashboard: the bundled assets under /assets/ and
// index.html for every other path that does not name a file, so any link
// into the page opens it. Only GET and HEAD are served.
func Handler() http.Handler {
	s, err := loadSite()
	if err != nil {
		// The files are compiled in; only a broken build gets here.
		panic("dashboard: embedded files: " + err.Error())
	}
	return s
}
