package dashboard

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"path"
	"regexp"
	"strings"
)

// file is one embedded file, ready to serve: its bytes (and a gzip copy
// when that is smaller), type, validator and caching policy.
type file struct {
	body         []byte
	gzipped      []byte // nil when not worth it
	contentType  string
	etag         string
	cacheControl string
}

// site is the dashboard's files by slash path without a leading slash.
type site struct {
	files map[string]*file
	index *file
}

// hashed matches the names build.mjs gives assets: name-HASH.ext, with
// esbuild's 8-character base32 hash or the favicon's 8 hex digits. Such a
// name changes whenever the content does, so it can be cached forever.
var hashed = regexp.MustCompile(`^assets/[A-Za-z0-9_.-]+-[A-Z0-9]{8}\.[a-z0-9]+$`)

// Types are fixed here rather than taken from the system's MIME tables,
// which differ between machines.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".json": "application/json",
	".txt":  "text/plain; charset=utf-8",
	".map":  "application/json",
}

func newSite(fsys fs.FS) (*site, error) {
	s := &site{files: map[string]*file{}}
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		s.files[name] = newFile(name, body)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if s.index = s.files["index.html"]; s.index == nil {
		return nil, errors.New("index.html is missing: run `make dashboard`")
	}
	return s, nil
}

func newFile(name string, body []byte) *file {
	sum := sha256.Sum256(body)
	f := &file{
		body:         body,
		contentType:  contentTypes[path.Ext(name)],
		etag:         `"` + hex.EncodeToString(sum[:12]) + `"`,
		cacheControl: "no-cache", // revalidate (cheap: ETag) so a new build shows at once
	}
	if f.contentType == "" {
		f.contentType = "application/octet-stream"
	}
	if hashed.MatchString(name) {
		f.cacheControl = "public, max-age=31536000, immutable"
	}
	if compressible(f.contentType) && len(body) > 512 {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(body)
		_ = zw.Close()
		if buf.Len() < len(body)*9/10 {
			f.gzipped = buf.Bytes()
		}
	}
	return f
}

func compressible(contentType string) bool {
	return strings.HasPrefix(contentType, "text/") || strings.Contains(contentType, "json") || strings.Contains(contentType, "svg")
}
