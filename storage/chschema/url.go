package chschema

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// DefaultDatabase is used when the URL names no database.
const DefaultDatabase = "tollgate"

// Table names: a public contract, like the column names.
const (
	RequestsTable   = "requests"
	FeedbackTable   = "feedback"
	MigrationsTable = "schema_migrations"
)

// bodyTTLParam is Tollgate's own URL parameter (stripped before the URL
// reaches clickhouse-go, which would send it to the server as a setting):
// keep request_body / response_body for this many days on servers that
// support column TTL. Absent or 0: keep them forever.
const bodyTTLParam = "body_ttl_days"

// clusterParam is Tollgate's own URL parameter (stripped like
// body_ttl_days) naming the ClickHouse cluster (remote_servers) to create
// the schema on; --clickhouse-cluster sets it (WithCluster). See cluster.go.
const clusterParam = "cluster"

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ValidDatabase tells whether name can be a database name in a statement
// as is: letters, digits and underscores.
func ValidDatabase(name string) bool { return identRE.MatchString(name) }

// Target is a parsed --clickhouse URL.
type Target struct {
	Options     *clickhouse.Options // for clickhouse.Open; not bound to the database
	DB          string
	BodyTTLDays int
	Cluster     string // cluster mode: the cluster's name; "" = one server
	Redacted    string // for logs: the password replaced
}

// ParseURL reads clickhouse://[user[:password]@]host:port[,host2:port]/database[?params].
// The params are clickhouse-go's DSN parameters (dial_timeout, compress,
// secure, …) plus body_ttl_days. Errors never repeat the URL, which may
// hold a password.
func ParseURL(raw string) (*Target, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, errors.New("clickhouse URL is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("clickhouse URL does not parse (want clickhouse://host:9000/database)")
	}
	switch u.Scheme {
	case "clickhouse", "tcp":
	default:
		// clickhouse-go's HTTP mode sends a setting ClickHouse 18.16
		// rejects, and the native protocol is the faster one anyway.
		return nil, fmt.Errorf("clickhouse URL scheme %q: want clickhouse:// (native protocol)", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("clickhouse URL has no host (want clickhouse://host:9000/database)")
	}
	t := &Target{DB: strings.Trim(u.Path, "/")}
	if t.DB == "" {
		t.DB = DefaultDatabase
	}
	if !identRE.MatchString(t.DB) {
		return nil, fmt.Errorf("clickhouse database name %q: use letters, digits and underscores", t.DB)
	}
	q := u.Query()
	if v := q.Get(bodyTTLParam); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("clickhouse URL: %s=%q: want a number of days (0 = keep forever)", bodyTTLParam, v)
		}
		t.BodyTTLDays = n
	}
	q.Del(bodyTTLParam)
	if v := q.Get(clusterParam); v != "" {
		if !identRE.MatchString(v) {
			return nil, fmt.Errorf("clickhouse URL: %s=%q: use letters, digits and underscores", clusterParam, v)
		}
		t.Cluster = v
	}
	q.Del(clusterParam)
	u.RawQuery = q.Encode()
	t.Redacted = u.Redacted()

	// The connection does not select the database: it may not exist yet
	// (Migrate creates it) and every statement names it anyway.
	u.Path = ""
	opts, err := clickhouse.ParseDSN(u.String())
	if err != nil {
		return nil, errors.New("clickhouse URL: invalid parameters: " + redactErr(err, u))
	}
	opts.Protocol = clickhouse.Native
	opts.Auth.Database = ""
	if opts.Auth.Username == "" {
		opts.Auth.Username = "default"
	}
	if !q.Has("dial_timeout") {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.Compression == nil {
		// Bodies are JSON and compress well; LZ4 costs little CPU.
		opts.Compression = &clickhouse.Compression{Method: clickhouse.CompressionLZ4}
	}
	if t.Cluster != "" {
		opts.Settings = withClusterSettings(opts.Settings)
	}
	opts.MaxOpenConns = 4
	opts.MaxIdleConns = 2
	opts.ClientInfo.Products = append(opts.ClientInfo.Products, struct {
		Name    string
		Version string
	}{Name: "tollgate", Version: "1"})
	t.Options = opts
	return t, nil
}

func redactErr(err error, u *url.URL) string {
	msg := err.Error()
	if p, ok := u.User.Password(); ok && p != "" {
		msg = strings.ReplaceAll(msg, p, "xxxxx")
	}
	return msg
}

// Connect opens a native-protocol connection pool for url (the --clickhouse
// flag) and returns it with the database name from the URL's path. It does
// not dial: the first query does. The pool is not bound to the database;
// qualify table names (database + "." + RequestsTable). For the query API.
func Connect(url string) (driver.Conn, string, error) {
	t, err := ParseURL(url)
	if err != nil {
		return nil, "", err
	}
	conn, err := clickhouse.Open(t.Options)
	if err != nil {
		return nil, "", fmt.Errorf("clickhouse: %w", err)
	}
	return conn, t.DB, nil
}

// withClusterSettings adds the session setting of cluster mode to every
// query of the pool (a URL parameter of the same name still wins):
// insert_distributed_sync=1, so an INSERT into a Distributed table returns
// once the rows are on a replica of every shard they belong to, not when
// they are queued on the node that took them. A successful insert is what
// lets the writer retire a batch from its write-ahead log and spool; an
// asynchronous one could still lose it with that node.
//
// Settings whose values are words (load_balancing, distributed_product_mode)
// cannot go here: clickhouse-go sends a setting to an 18.16 server as a
// number. docs/clickhouse.md recommends load_balancing = in_order in the
// server's profile; the queries use GLOBAL IN where they filter one
// Distributed table by another.
func withClusterSettings(s clickhouse.Settings) clickhouse.Settings {
	out := clickhouse.Settings{"insert_distributed_sync": 1}
	for k, v := range s {
		out[k] = v
	}
	return out
}

// WithCluster returns the --clickhouse URL naming cluster (the
// --clickhouse-cluster setting) as its cluster parameter; an empty
// cluster returns the URL as it is.
func WithCluster(raw, cluster string) (string, error) {
	if cluster == "" || raw == "" {
		return raw, nil
	}
	if !identRE.MatchString(cluster) {
		return "", fmt.Errorf("clickhouse cluster name %q: use letters, digits and underscores", cluster)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("clickhouse URL does not parse (want clickhouse://host:9000/database)")
	}
	q := u.Query()
	q.Set(clusterParam, cluster)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
