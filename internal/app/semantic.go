package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/policies/semcache"
	"github.com/tollgate-dev/tollgate/storage/redisstore"
)

// openSemantic builds the semantic cache when semantic-cache-url is set:
// on Redis (its own client, so that following the log of additions never
// queues behind the request path's round trips) or in process. Its index
// is read from the store before it returns and followed until ctx ends.
func openSemantic(ctx context.Context, cfg *Config, reg prometheus.Registerer, log *slog.Logger) (*semcache.Cache, io.Closer, error) {
	if cfg.SemanticCacheURL == "" {
		return nil, io.NopCloser(nil), nil
	}
	var store semcache.Store
	var closer io.Closer = io.NopCloser(nil)
	if cfg.Redis != "" {
		rs, err := redisstore.Open(cfg.Redis, redisstore.Options{MaxInFlight: -1})
		if err != nil {
			return nil, nil, fmt.Errorf("redis: %w", err)
		}
		store, closer = rs.Semantic(cfg.SemanticCacheMaxLog), rs
	} else {
		store = semcache.NewMemStore(cfg.SemanticCacheMaxLog, nil)
	}
	dims := semanticDims(cfg.SemanticCacheModel, cfg.SemanticCacheDimensions)
	// Its own transport: the embeddings calls of many concurrent requests
	// reuse their connections instead of queueing behind the default two
	// idle connections per host.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 64, 64
	c, err := semcache.New(semcache.Options{
		Store: store,
		Embedder: &semcache.HTTPEmbedder{BaseURL: cfg.SemanticCacheURL, Model: cfg.SemanticCacheModel,
			Dimensions: dims, APIKey: cfg.SemanticCacheAPIKey, Client: &http.Client{Transport: tr}},
		Model:              cfg.SemanticCacheModel,
		Dimensions:         dims,
		MaxTTL:             cfg.SemanticCacheMaxTTL.Duration,
		Threshold:          float32(cfg.SemanticCacheThreshold),
		MaxEntriesPerScope: cfg.SemanticCacheMaxEntries,
		MaxEntries:         cfg.SemanticCacheMaxLog,
		EmbedTimeout:       cfg.SemanticCacheTimeout.Duration,
		StoreTimeout:       cfg.RedisTimeout.Duration,
		AddTimeout:         cfg.RedisWriteTimeout.Duration,
		Metrics:            semcache.NewMetrics(reg),
		Logger:             log,
	})
	if err != nil {
		_ = closer.Close()
		return nil, nil, err
	}
	c.Start(ctx)
	log.Info("semantic cache on", "embeddings", redactedURL(cfg.SemanticCacheURL), "model", cfg.SemanticCacheModel)
	return c, closer, nil
}

// redactedURL is u with any password replaced, for logs.
func redactedURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}

// semanticDims is the vector length asked of the embeddings endpoint:
// the setting, else 256 for OpenAI's text-embedding-3 models (which can
// shorten their vectors: a sixth of text-embedding-3-small's memory and
// scan time), else 0, the model's own length.
func semanticDims(model string, setting int) int {
	if setting > 0 {
		return setting
	}
	if strings.HasPrefix(model, "text-embedding-3-") {
		return 256
	}
	return 0
}

// semanticDimensions accepts 0 (the default) up to what the index takes.
func semanticDimensions(v int) error {
	if v < 0 || v > semcache.MaxDimensions {
		return fmt.Errorf("want 0 (the model's default) up to %d", semcache.MaxDimensions)
	}
	return nil
}
