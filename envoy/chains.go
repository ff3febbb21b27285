package envoy

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// MaxChainOrigins bounds the origins ChainSequences takes: n origins make
// n(n-1) sequences of two and n(n-1)(n-2) of three, 1452 for 12, each a
// route and a cluster.
const MaxChainOrigins = 12

// ChainSequences returns every ordered sequence of two or three distinct
// origins, the pairs first, each in the order of origins. These are the
// fallback chains (x-tollgate-fallback-chain values) a list of
// Helicone-Fallbacks entries of two or three attempts can name.
func ChainSequences(origins []string) ([][]string, error) {
	if len(origins) > MaxChainOrigins {
		return nil, fmt.Errorf("%d origins make %d fallback chains; at most %d origins", len(origins), chainCount(len(origins)), MaxChainOrigins)
	}
	seen := map[string]bool{}
	for _, o := range origins {
		if seen[o] {
			return nil, fmt.Errorf("origin %s named twice", o)
		}
		seen[o] = true
	}
	out := make([][]string, 0, chainCount(len(origins)))
	for i := range origins {
		for j := range origins {
			if j != i {
				out = append(out, []string{origins[i], origins[j]})
			}
		}
	}
	for i := range origins {
		for j := range origins {
			for k := range origins {
				if j != i && k != i && k != j {
					out = append(out, []string{origins[i], origins[j], origins[k]})
				}
			}
		}
	}
	return out, nil
}

func chainCount(n int) int { return n*(n-1) + n*(n-1)*max(n-2, 0) }

// chainOrigin is an origin as a chain cluster's endpoint names it.
type chainOrigin struct {
	origin    string // scheme://host[:port], lowercase, as the processor writes it
	tls       bool
	host      string // for DNS and SNI
	port      int
	authority string // the Host of its attempts (auto_host_rewrite): host[:port]
	name      string // in route and cluster names
	socket    string // its transport_socket_matches entry
}

func parseChainOrigin(raw string) (chainOrigin, error) {
	u, err := url.Parse(strings.TrimRight(strings.ToLower(strings.TrimSpace(raw)), "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || strings.Contains(u.Hostname(), ":") ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return chainOrigin{}, fmt.Errorf("want an origin such as https://api.together.xyz (scheme, host name or IPv4 address, optional port), got %q", raw)
	}
	o := chainOrigin{origin: u.Scheme + "://" + u.Host, tls: u.Scheme == "https", host: u.Hostname(), authority: u.Host}
	o.port = 443
	if !o.tls {
		o.port = 80
	}
	if p := u.Port(); p != "" {
		if o.port, err = strconv.Atoi(p); err != nil || o.port < 1 || o.port > 65535 {
			return chainOrigin{}, fmt.Errorf("origin %q: bad port", raw)
		}
	}
	o.socket = o.authority
	if !o.tls {
		o.socket = "http://" + o.authority
	}
	return o, nil
}

var notNameChar = regexp.MustCompile(`[^a-z0-9]+`)

// nameOrigins gives each origin a short name: the first label of its host
// after any "api." (openai, together), or, when two would share one, the
// scheme, host and port; an error if even those collide (a-b.example and
// a.b.example).
func nameOrigins(list []chainOrigin) error {
	short := func(o chainOrigin) string {
		return strings.SplitN(strings.TrimPrefix(o.host, "api."), ".", 2)[0]
	}
	long := func(o chainOrigin) string { return notNameChar.ReplaceAllString(o.origin, "_") }
	for _, name := range []func(chainOrigin) string{short, long} {
		used := map[string]bool{}
		unique := true
		for _, o := range list {
			n := notNameChar.ReplaceAllString(name(o), "_")
			unique = unique && !used[n]
			used[n] = true
		}
		if unique {
			for i := range list {
				list[i].name = notNameChar.ReplaceAllString(name(list[i]), "_")
			}
			return nil
		}
	}
	return errors.New("two origins reduce to the same route and cluster name (such as a-b.example and a.b.example); their chains need names written by hand")
}

// ChainConfig writes the fallback chain routes and clusters for every
// sequence ChainSequences makes of origins, in the shape of the chain of
// envoy/sidecar.yaml and envoy/gateway.yaml: routes is a list of routes
// for the egress virtual host, to paste before its fallback_chain_unknown
// route; clusters a list for static_resources.clusters. The clusters run
// the configuration's upstream filters (the *upstream_filters anchor), so
// both go into one of those files or a copy of it. An https:// origin's
// endpoint verifies the origin's certificate as its own; an http:// one is
// plain text.
func ChainConfig(origins []string) (routes, clusters string, err error) {
	parsed := make([]chainOrigin, len(origins))
	byOrigin := map[string]chainOrigin{}
	names := make([]string, len(origins))
	for i, raw := range origins {
		if parsed[i], err = parseChainOrigin(raw); err != nil {
			return "", "", err
		}
		names[i] = parsed[i].origin
	}
	if err := nameOrigins(parsed); err != nil {
		return "", "", err
	}
	for _, o := range parsed {
		byOrigin[o.origin] = o
	}
	seqs, err := ChainSequences(names)
	if err != nil {
		return "", "", err
	}
	var r, c strings.Builder
	for _, seq := range seqs {
		levels := make([]chainOrigin, len(seq))
		parts := []string{"fallback"}
		for i, o := range seq {
			levels[i] = byOrigin[o]
			parts = append(parts, levels[i].name)
		}
		name := strings.Join(parts, "_")
		writeChainRoute(&r, name, strings.Join(seq, " "))
		writeChainCluster(&c, name, levels)
	}
	return r.String(), c.String(), nil
}

// ChainClustersMarker separates the routes from the clusters in
// ChainFragments.
const ChainClustersMarker = "# Clusters: in static_resources.clusters.\n"

// ChainFragments is ChainConfig's routes and clusters in one text, each
// under a comment that says where it goes: what `tollgate envoy-chains`
// prints.
func ChainFragments(origins []string) (string, error) {
	routes, clusters, err := ChainConfig(origins)
	if err != nil {
		return "", err
	}
	return "# Routes: in the egress virtual host, before fallback_chain_unknown.\n" + routes + "\n" + ChainClustersMarker + clusters, nil
}

func writeChainRoute(b *strings.Builder, name, chain string) {
	fmt.Fprintf(b, `              - name: %s
                match:
                  prefix: "/"
                  headers:
                  - name: x-tollgate-fallback-chain
                    string_match: { exact: %s }
                route:
                  cluster: %s
                  auto_host_rewrite: true
                  timeout: 600s
                  idle_timeout: 600s
`, name, strconv.Quote(chain), name)
}

func writeChainCluster(b *strings.Builder, name string, levels []chainOrigin) {
	fmt.Fprintf(b, `  - name: %s
    type: STRICT_DNS
    dns_lookup_family: V4_PREFERRED
    connect_timeout: 5s
    per_connection_buffer_limit_bytes: 33554432
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http_protocol_options: {}
        http_filters: *upstream_filters
    circuit_breakers:
      thresholds:
      - max_connections: 100000
        max_pending_requests: 100000
        max_requests: 100000
        max_retries: 1000
    load_assignment:
      cluster_name: %s
      endpoints:
`, name, name)
	for i, o := range levels {
		fmt.Fprintf(b, `      - priority: %d
        lb_endpoints:
        - endpoint:
            address:
              socket_address: { address: %s, port_value: %d }
            hostname: %s
          metadata:
            filter_metadata:
              envoy.transport_socket_match: { origin: %s }
`, i, strconv.Quote(o.host), o.port, strconv.Quote(o.authority), strconv.Quote(o.socket))
	}
	b.WriteString("    transport_socket_matches:\n")
	for _, o := range levels {
		fmt.Fprintf(b, "    - name: %s\n      match: { origin: %s }\n", strconv.Quote(o.socket), strconv.Quote(o.socket))
		if !o.tls {
			b.WriteString(`      transport_socket:
        name: envoy.transport_sockets.raw_buffer
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer
`)
			continue
		}
		fmt.Fprintf(b, `      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
          sni: %s
          common_tls_context:
            validation_context:
              trusted_ca: { filename: /etc/ssl/certs/ca-certificates.crt }
              match_typed_subject_alt_names:
              - san_type: DNS
                matcher: { exact: %s }
`, strconv.Quote(o.host), strconv.Quote(o.host))
	}
	b.WriteString(`    # An endpoint that matched no entry above would get this one: TLS that
    # accepts no certificate, so a mistake fails closed.
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        common_tls_context:
          validation_context:
            trusted_ca: { filename: /etc/ssl/certs/ca-certificates.crt }
            match_typed_subject_alt_names:
            - san_type: DNS
              matcher: { exact: no-transport-socket-match.invalid }
`)
}
