package testenv

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ClickHouseClusterName is the name the private cluster has in every
// node's remote_servers: what --clickhouse-cluster names.
const ClickHouseClusterName = "tollgate_test"

// ClickHouseCluster is a private replicated, sharded ClickHouse: one
// ZooKeeper and Shards × Replicas clickhouse-server processes that form the
// cluster ClickHouseClusterName. Each node has macros {shard} (01, 02, …)
// and {replica} (a name unique in the cluster), the cluster in
// remote_servers with internal_replication (a Distributed table writes one
// replica of a shard, the replicated table copies it to the others) and
// distributed DDL (ON CLUSTER) through ZooKeeper.
type ClickHouseCluster struct {
	Name      string
	ZooKeeper *ZooKeeperServer
	// Nodes[s*Replicas+r] is replica r of shard s. Each can be killed and
	// started again (same ports, same data folder).
	Nodes            []*ClickHouseServer
	Shards, Replicas int
}

// Node is replica r (0-based) of shard s (0-based).
func (c *ClickHouseCluster) Node(s, r int) *ClickHouseServer { return c.Nodes[s*c.Replicas+r] }

// URL is clickhouse://host:port of the first node: any node can take
// queries, DDL and inserts for the whole cluster. Append "/database".
func (c *ClickHouseCluster) URL() string { return c.Nodes[0].URL() }

// StartClickHouseCluster starts ZooKeeper and shards × replicas ClickHouse
// servers on free loopback ports under one temporary folder, and stops them
// (by PID) when the test ends. Without clickhouse-server, Java or Debian's
// zookeeper package the test is skipped, or fails under `make test`.
func StartClickHouseCluster(t testing.TB, shards, replicas int) *ClickHouseCluster {
	t.Helper()
	argv := clickHouseArgv(t)
	if argv == nil {
		return nil
	}
	zk := StartZooKeeper(t)
	if zk == nil {
		return nil
	}
	c := &ClickHouseCluster{Name: ClickHouseClusterName, ZooKeeper: zk, Shards: shards, Replicas: replicas}
	type ports struct{ tcp, http, inter int }
	used := map[int]bool{}
	pick := func() int {
		for {
			if p := freePort(t); !used[p] {
				used[p] = true
				return p
			}
		}
	}
	all := make([]ports, shards*replicas)
	for i := range all {
		all[i] = ports{pick(), pick(), pick()}
	}
	var remote strings.Builder
	for s := range shards {
		remote.WriteString("            <shard>\n                <internal_replication>true</internal_replication>\n")
		for r := range replicas {
			fmt.Fprintf(&remote, "                <replica><host>127.0.0.1</host><port>%d</port></replica>\n", all[s*replicas+r].tcp)
		}
		remote.WriteString("            </shard>\n")
	}
	for i, p := range all {
		s, r := i/replicas, i%replicas
		n := &ClickHouseServer{tcpPort: p.tcp, httpPort: p.http}
		n.t, n.name, n.stopTimeout = t, fmt.Sprintf("clickhouse-server s%d r%d", s+1, r+1), clickHouseStopTimeout
		n.dir = newProcDir(t, fmt.Sprintf("chcluster-s%dr%d-*", s+1, r+1))
		n.logs = []string{
			filepath.Join(n.dir, "log", "clickhouse-server.err.log"),
			filepath.Join(n.dir, "log", "clickhouse-server.log"),
		}
		n.ready = func(ctx context.Context) error { return pingClickHouse(ctx, n.HTTP()) }
		if _, err := runScript("clickhouse-config", n.dir, strconv.Itoa(p.tcp), strconv.Itoa(p.http)); err != nil {
			t.Fatal(err)
		}
		overlay := clusterOverlay(c.Name, remote.String(), zk.Port(), p.inter, s+1, fmt.Sprintf("s%dr%d", s+1, r+1))
		if err := os.MkdirAll(filepath.Join(n.dir, "config.d"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(n.dir, "config.d", "cluster.xml"), []byte(overlay), 0o644); err != nil {
			t.Fatal(err)
		}
		// docs/clickhouse.md's recommended profile: reads and inserts go
		// to the first healthy replica of a shard.
		if err := os.MkdirAll(filepath.Join(n.dir, "users.d"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(n.dir, "users.d", "cluster.xml"), []byte(clusterProfile), 0o644); err != nil {
			t.Fatal(err)
		}
		n.argv = append(append([]string{}, argv...), "--config-file="+n.ConfigPath())
		c.Nodes = append(c.Nodes, n)
	}
	// Stopped together: each graceful stop takes a second or more.
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, n := range c.Nodes {
			wg.Add(1)
			go func() { defer wg.Done(); n.Stop() }()
		}
		wg.Wait()
	})
	// The nodes start at once: each takes about a second, mostly waiting.
	var wg sync.WaitGroup
	errs := make([]error, len(c.Nodes))
	for i, n := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.start()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// ClickHouse 18.16 answers /ping before its distributed-DDL worker has
	// its ZooKeeper session, and an ON CLUSTER statement in that window
	// crashes the server (a null session in ZooKeeper::create). Wait until
	// every node sees the DDL queue in ZooKeeper (its own session is up and
	// a worker has created the queue), then give the workers a moment.
	for _, n := range c.Nodes {
		WaitFor(t, startTimeout, n.name+" to reach ZooKeeper's DDL queue", func() bool {
			return clickHouseQuery(n.HTTP(), "SELECT count() FROM system.zookeeper WHERE path = '/clickhouse/task_queue' AND name = 'ddl'") == "1"
		})
	}
	time.Sleep(500 * time.Millisecond)
	return c
}

// clickHouseQuery runs one query over HTTP and returns its answer without
// the trailing newline, or "" on any error.
func clickHouseQuery(base, q string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/?query="+url.QueryEscape(q), nil)
	if err != nil {
		return ""
	}
	resp, err := pingClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// clusterOverlay is a node's config.d/cluster.xml, merged over the config
// of scripts/testenv.sh's ClickHouse. interserver_http_port is where the
// other replicas fetch parts from this one. session_timeout_ms is short so
// that a killed replica's "is active" mark in ZooKeeper expires in seconds
// and it can come back at once (18.16 refuses to start a replica whose
// previous session is still alive). replicated_max_ratio_of_wrong_parts
// is 1 because a replica killed mid-insert may hold a part it never
// registered in ZooKeeper; on these small tables that part can be more
// than the default half of the rows, and the server then refuses to start
// until an operator sets flags/force_restore_data. With 1 it moves such a
// part to detached/ and starts: the insert that wrote it was never
// acknowledged, so the writer's spool sends its rows again.
func clusterOverlay(name, shards string, zkPort, interPort, shard int, replica string) string {
	return fmt.Sprintf(`<?xml version="1.0"?>
<yandex>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <interserver_http_port>%d</interserver_http_port>
    <remote_servers>
        <%s>
%s        </%s>
    </remote_servers>
    <zookeeper>
        <node><host>127.0.0.1</host><port>%d</port></node>
        <session_timeout_ms>3000</session_timeout_ms>
        <operation_timeout_ms>3000</operation_timeout_ms>
    </zookeeper>
    <macros>
        <shard>%02d</shard>
        <replica>%s</replica>
    </macros>
    <distributed_ddl>
        <path>/clickhouse/task_queue/ddl</path>
    </distributed_ddl>
    <merge_tree>
        <replicated_max_ratio_of_wrong_parts>1</replicated_max_ratio_of_wrong_parts>
    </merge_tree>
</yandex>
`, interPort, name, shards, name, zkPort, shard, replica)
}

// clusterProfile is merged into each node's users.xml.
const clusterProfile = `<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <load_balancing>in_order</load_balancing>
        </default>
    </profiles>
</yandex>
`

// clickHouseArgv is the command that runs a clickhouse-server (Debian's
// binary or upstream's multi-call one), or nil after ending the test.
func clickHouseArgv(t testing.TB) []string {
	t.Helper()
	if bin, ok := findBinary(t, EnvClickHouseServer, "clickhouse-server"); ok {
		return []string{bin}
	}
	if multi, ok := findBinary(t, "", "clickhouse"); ok {
		return []string{multi, "server"}
	}
	missing(t, "clickhouse-server not found")
	return nil
}
