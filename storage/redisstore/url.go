package redisstore

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Mode is the deployment a URL names.
type Mode string

const (
	ModeSingle   Mode = "single"
	ModeCluster  Mode = "cluster"
	ModeSentinel Mode = "sentinel"
)

// Config is a parsed Redis URL: exactly one of the option structs is set.
type Config struct {
	Mode     Mode
	Single   *redis.Options
	Cluster  *redis.ClusterOptions
	Sentinel *redis.FailoverOptions
	// MaxInFlight is the URL's max_in_flight (Options.MaxInFlight), 0 when
	// absent.
	MaxInFlight int
}

// ParseURL reads the --redis URL. Forms (scheme redis, or rediss for TLS):
//
//	redis://[user:pass@]host[:6379][/db][?opts]             one node
//	unix:///path/redis.sock[?db=N]                          one node, unix socket
//	redis+cluster://[user:pass@]h1:p1,h2:p2[?opts]          Cluster (seed nodes)
//	redis://h1:p1,h2:p2[?opts]                              Cluster too (several hosts)
//	redis://h1:p1[?cluster=true&opts]                       Cluster from one seed
//	redis+sentinel://[user:pass@]s1[:26379],s2/db?master=mymaster[&sentinel_password=…]
//	redis://s1:26379?master=mymaster                        Sentinel too
//
// user:pass are the credentials of the data nodes (for Sentinel: the
// master); sentinel_username / sentinel_password authenticate to the
// Sentinels. Other query options are go-redis's (dial_timeout, pool_size,
// max_retries, …), and Tollgate's own max_in_flight (Options.MaxInFlight:
// -1 turns coalescing off). A Cluster has only database 0.
//
// Every client respects the caller's context deadline
// (ContextTimeoutEnabled): that is how the Gate's per-call timeout bounds a
// slow or vanished Redis.
func ParseURL(raw string) (*Config, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, errors.New("redisstore: want a redis:// URL")
	}
	scheme = strings.ToLower(scheme)
	if scheme == "unix" {
		path, query, _ := strings.Cut(raw, "?")
		q, err := url.ParseQuery(query)
		if err != nil {
			return nil, fmt.Errorf("redisstore: %w", err)
		}
		inFlight, err := takeMaxInFlight(q)
		if err != nil {
			return nil, err
		}
		o, err := redis.ParseURL(path + encodeQuery(q, nil))
		if err != nil {
			return nil, fmt.Errorf("redisstore: %w", err)
		}
		requestPathDefaults(q)(&o.DialerRetries, &o.MaxRetries, &o.ContextTimeoutEnabled)
		return &Config{Mode: ModeSingle, Single: o, MaxInFlight: inFlight}, nil
	}
	base, variant, _ := strings.Cut(scheme, "+")
	if base != "redis" && base != "rediss" {
		return nil, fmt.Errorf("redisstore: unknown scheme %q (want redis, rediss, redis+cluster, redis+sentinel or unix)", scheme)
	}
	mode := ModeSingle
	switch variant {
	case "":
	case "cluster":
		mode = ModeCluster
	case "sentinel":
		mode = ModeSentinel
	default:
		return nil, fmt.Errorf("redisstore: unknown scheme %q", scheme)
	}

	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	var userinfo string
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		userinfo, authority = authority[:at+1], authority[at+1:]
	}
	tu, err := url.Parse(base + "://h" + tail)
	if err != nil {
		return nil, fmt.Errorf("redisstore: %w", err)
	}
	q := tu.Query()
	take := func(name string) string {
		v := q.Get(name)
		q.Del(name)
		return v
	}
	if v := take("cluster"); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("redisstore: cluster=%q: want true or false", v)
		}
		if on {
			if mode == ModeSentinel {
				return nil, errors.New("redisstore: cluster=true with a sentinel URL")
			}
			mode = ModeCluster
		}
	}
	master := take("master")
	if m := take("master_name"); master == "" {
		master = m
	}
	sentUser, sentPass := take("sentinel_username"), take("sentinel_password")
	inFlight, err := takeMaxInFlight(q)
	if err != nil {
		return nil, err
	}
	tune := requestPathDefaults(q)
	if master != "" {
		if mode == ModeCluster {
			return nil, errors.New("redisstore: master= names a Sentinel master, not a Cluster option")
		}
		mode = ModeSentinel
	}

	defPort := "6379"
	if mode == ModeSentinel {
		defPort = "26379"
	}
	var hosts []string
	for _, h := range strings.Split(authority, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(strings.Trim(h, "[]"), defPort)
		}
		hosts = append(hosts, h)
	}
	if len(hosts) == 0 {
		return nil, errors.New("redisstore: no host in URL")
	}
	if len(hosts) > 1 && mode == ModeSingle {
		mode = ModeCluster
	}

	switch mode {
	case ModeSingle:
		o, err := redis.ParseURL(base + "://" + userinfo + hosts[0] + tu.Path + encodeQuery(q, nil))
		if err != nil {
			return nil, fmt.Errorf("redisstore: %w", err)
		}
		tune(&o.DialerRetries, &o.MaxRetries, &o.ContextTimeoutEnabled)
		return &Config{Mode: mode, Single: o, MaxInFlight: inFlight}, nil
	case ModeCluster:
		if p := strings.Trim(tu.Path, "/"); p != "" && p != "0" {
			return nil, fmt.Errorf("redisstore: a Redis Cluster has only database 0, URL names %q", p)
		}
		o, err := redis.ParseClusterURL(base + "://" + userinfo + hosts[0] + encodeQuery(q, hosts[1:]))
		if err != nil {
			return nil, fmt.Errorf("redisstore: %w", err)
		}
		tune(&o.DialerRetries, &o.MaxRetries, &o.ContextTimeoutEnabled)
		return &Config{Mode: mode, Cluster: o, MaxInFlight: inFlight}, nil
	default:
		if master == "" {
			return nil, errors.New("redisstore: a sentinel URL needs ?master=<name>")
		}
		// go-redis reads the userinfo as the Sentinel's credentials and
		// username / password options as the master's; ours is the other
		// way round (userinfo = data node, like every other form).
		if userinfo != "" {
			ui, err := url.Parse(base + "://" + userinfo + "h")
			if err != nil {
				return nil, fmt.Errorf("redisstore: %w", err)
			}
			if u := ui.User.Username(); u != "" {
				q.Set("username", u)
			}
			if p, ok := ui.User.Password(); ok {
				q.Set("password", p)
			}
		}
		q.Set("master_name", master)
		sentinelInfo := ""
		if sentUser != "" || sentPass != "" {
			sentinelInfo = url.UserPassword(sentUser, sentPass).String() + "@"
		}
		o, err := redis.ParseFailoverURL(base + "://" + sentinelInfo + hosts[0] + tu.Path + encodeQuery(q, hosts[1:]))
		if err != nil {
			return nil, fmt.Errorf("redisstore: %w", err)
		}
		tune(&o.DialerRetries, &o.MaxRetries, &o.ContextTimeoutEnabled)
		return &Config{Mode: mode, Sentinel: o, MaxInFlight: inFlight}, nil
	}
}

// requestPathDefaults returns the function that tunes a parsed client for
// the request path: the caller's context deadline applies, and — unless the
// URL says otherwise — dial once and never retry a command. go-redis's
// defaults (5 dial attempts 100 ms apart, 3 retries) would turn an
// unreachable Redis into a full Gate timeout on every call; this way a
// refused connection fails at once and the fail mode applies without the
// wait. No retry, because the admit script is not idempotent: go-redis
// re-sends a command (a whole coalesced pipeline) whose reply was lost after
// it was written, which would take every limit in it twice. A connection
// Redis closed is found by go-redis's check before a command is written.
func requestPathDefaults(q url.Values) func(dialerRetries, maxRetries *int, ctxTimeout *bool) {
	setDial, setRetries := !q.Has("dialer_retries"), !q.Has("max_retries")
	return func(dialerRetries, maxRetries *int, ctxTimeout *bool) {
		*ctxTimeout = true
		if setDial {
			*dialerRetries = 1
		}
		if setRetries {
			*maxRetries = -1 // go-redis: -1 is no retry, 0 its default of 3
		}
	}
}

// takeMaxInFlight removes max_in_flight from q (go-redis would refuse it)
// and returns it: -1 or "off", or a count from 1 up; 0 when absent.
func takeMaxInFlight(q url.Values) (int, error) {
	v := q.Get("max_in_flight")
	q.Del("max_in_flight")
	switch v {
	case "":
		return 0, nil
	case "off", "-1":
		return -1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1024 {
		return 0, fmt.Errorf("redisstore: max_in_flight=%q: want a count from 1 to 1024, or off", v)
	}
	return n, nil
}

func encodeQuery(q url.Values, addrs []string) string {
	for _, a := range addrs {
		q.Add("addr", a)
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// NewClient makes the go-redis client for a URL (see ParseURL).
func NewClient(raw string) (redis.UniversalClient, error) {
	cfg, err := ParseURL(raw)
	if err != nil {
		return nil, err
	}
	return cfg.client(), nil
}

func (cfg *Config) client() redis.UniversalClient {
	switch cfg.Mode {
	case ModeCluster:
		return redis.NewClusterClient(cfg.Cluster)
	case ModeSentinel:
		return redis.NewFailoverClient(cfg.Sentinel)
	}
	return redis.NewClient(cfg.Single)
}
