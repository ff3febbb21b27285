// Package mutation is how the jobs that rewrite ClickHouse data (erasure,
// retention) start an ALTER TABLE mutation tagged with a mark and find it
// again in system.mutations: on one server there, in cluster mode on
// every node.
//
// A mutation is done only when it is done on every node that holds the
// table's rows. On one server that is the server. In cluster mode each
// replica of each shard runs the mutation on its own time, so
// system.mutations is read on every host of the cluster (those of
// system.clusters), not only on the node connected to: a mutation done
// there says nothing of the other shards, and an ON CLUSTER ALTER that
// reached the connected node but timed out on another shard is missing
// there. A node that cannot be read fails the read, so the caller waits
// (never done early, never started twice while another shard runs it).
package mutation

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tollgate-dev/tollgate/storage/chschema"
)

// Alter is the DDL of mutation cmd (e.g. "DELETE WHERE …") on table's
// local tables (ON CLUSTER in cluster mode), tagged with mark: the
// command ends in AND notEmpty('mark'), which system.mutations keeps.
func Alter(db, cluster, table, cmd, mark string) string {
	t := chschema.Target{Cluster: cluster}
	return fmt.Sprintf("ALTER TABLE %s.%s%s %s AND notEmpty('%s')", db, t.Local(table), t.OnCluster(), cmd, mark)
}

// Node are the tagged mutations of one table on one node.
type Node struct {
	// Shard names the node's shard: replicas of one shard share their
	// mutations (through ZooKeeper), shards do not.
	Shard    string
	Commands []string
	Done     []uint8 // is_done of each command
}

// Table are the tagged mutations of one table, one entry per node (on
// one server: one entry).
type Table []Node

// Tagged tells whether c is the command of the mutation tagged mark.
func Tagged(c, mark string) bool { return strings.Contains(c, "'"+mark+"'") }

// StartedEverywhere: every shard has the mutation tagged mark (at least
// one replica has it; the shard's other replicas read it from ZooKeeper).
func (m Table) StartedEverywhere(mark string) bool {
	started := map[string]bool{}
	for _, n := range m {
		started[n.Shard] = started[n.Shard] || n.has(mark)
	}
	for _, ok := range started {
		if !ok {
			return false
		}
	}
	return true
}

// Command is the text of the mutation tagged mark on some node, "" when
// no node has it.
func (m Table) Command(mark string) string {
	for _, n := range m {
		for _, c := range n.Commands {
			if Tagged(c, mark) {
				return c
			}
		}
	}
	return ""
}

// DoneEverywhere: every node has the mutation tagged mark and has
// finished it (each copy, if it was issued more than once).
func (m Table) DoneEverywhere(mark string) bool {
	for _, n := range m {
		if !n.has(mark) {
			return false
		}
		if n.running(mark) {
			return false
		}
	}
	return true
}

// Running: some node has a copy of the mutation tagged mark that it has
// not finished.
func (m Table) Running(mark string) bool {
	for _, n := range m {
		if n.running(mark) {
			return true
		}
	}
	return false
}

// Marks lists the tags, starting with prefix, of the mutations any node
// has, each once.
func (m Table) Marks(prefix string) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range m {
		for _, c := range n.Commands {
			i := strings.Index(c, "'"+prefix)
			if i < 0 {
				continue
			}
			rest := c[i+1:]
			j := strings.IndexByte(rest, '\'')
			if j < 0 || seen[rest[:j]] {
				continue
			}
			seen[rest[:j]] = true
			out = append(out, rest[:j])
		}
	}
	return out
}

func (n *Node) has(mark string) bool {
	for _, c := range n.Commands {
		if Tagged(c, mark) {
			return true
		}
	}
	return false
}

func (n *Node) running(mark string) bool {
	for i, c := range n.Commands {
		if Tagged(c, mark) && n.Done[i] == 0 {
			return true
		}
	}
	return false
}

// ClickHouse's code for an unknown table function (clusterAllReplicas
// on 18.16).
const codeUnknownTableFunction = 46

// Reader reads tagged mutations. Its zero value with Conn, DB and Cluster
// set is ready; it remembers whether the server has clusterAllReplicas.
type Reader struct {
	Conn    driver.Conn
	DB      string
	Cluster string // "" = one server

	probe       sync.Mutex
	probed      bool
	allReplicas bool
}

// Read reads the mutations of table whose command contains substr (a
// mark, or the common start of several; callers tell them apart with
// Tagged) on every node (see the package comment).
func (r *Reader) Read(ctx context.Context, table, substr string) (Table, error) {
	local := (&chschema.Target{Cluster: r.Cluster}).Local(table)
	where := "database = ? AND table = ? AND position(command, ?) > 0"
	args := []any{r.DB, local, substr}
	if r.Cluster == "" {
		rows, err := r.Conn.Query(ctx, "SELECT command, is_done FROM system.mutations WHERE "+where, args...)
		if err != nil {
			return nil, fmt.Errorf("system.mutations: %w", err)
		}
		defer rows.Close()
		n := Node{}
		for rows.Next() {
			var c string
			var d uint8
			if err := rows.Scan(&c, &d); err != nil {
				return nil, fmt.Errorf("system.mutations: %w", err)
			}
			n.Commands, n.Done = append(n.Commands, c), append(n.Done, d)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("system.mutations: %w", err)
		}
		return Table{n}, nil
	}

	hosts, shards, err := r.clusterHosts(ctx)
	if err != nil {
		return nil, err
	}
	// One row per node, even a node without any of the mutations (an
	// aggregate without GROUP BY): a node missing from the answer would
	// otherwise look like one that has nothing to do.
	var q string
	var qargs []any
	all, err := r.hasClusterAllReplicas(ctx)
	if err != nil {
		return nil, err
	}
	if all {
		q = fmt.Sprintf("SELECT shard, commands, done FROM clusterAllReplicas('%s', view("+
			"SELECT getMacro('shard') AS shard, groupArray(command) AS commands, groupArray(is_done) AS done "+
			"FROM system.mutations WHERE %s))", r.Cluster, where)
		qargs = args
	} else {
		// 18.16: no clusterAllReplicas; remote() on each host, one by one
		// (so that the answer says which node each row is from). It
		// connects as the default user, as 18.16 has no other way.
		parts := make([]string, len(hosts))
		for i, h := range hosts {
			parts[i] = fmt.Sprintf("SELECT '%s' AS shard, groupArray(command) AS commands, groupArray(is_done) AS done "+
				"FROM remote('%s', system, mutations) WHERE %s", shards[i], h, where)
			qargs = append(qargs, args...)
		}
		q = strings.Join(parts, " UNION ALL ")
	}
	// An unreachable node must fail the read, not be skipped.
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"skip_unavailable_shards": 0}))
	rows, err := r.Conn.Query(ctx, q, qargs...)
	if err != nil {
		return nil, fmt.Errorf("system.mutations of every node: %w", err)
	}
	defer rows.Close()
	var out Table
	for rows.Next() {
		var n Node
		if err := rows.Scan(&n.Shard, &n.Commands, &n.Done); err != nil {
			return nil, fmt.Errorf("system.mutations of every node: %w", err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("system.mutations of every node: %w", err)
	}
	if len(out) != len(hosts) {
		return nil, fmt.Errorf("system.mutations: %d of the cluster's %d nodes answered", len(out), len(hosts))
	}
	return out, nil
}

// clusterHosts lists the cluster's nodes (host:port) and each one's
// shard, from system.clusters.
func (r *Reader) clusterHosts(ctx context.Context) (hosts, shards []string, err error) {
	rows, err := r.Conn.Query(ctx, "SELECT host_name, port, shard_num FROM system.clusters WHERE cluster = ?", r.Cluster)
	if err != nil {
		return nil, nil, fmt.Errorf("system.clusters: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var host string
		var port uint16
		var shard uint32
		if err := rows.Scan(&host, &port, &shard); err != nil {
			return nil, nil, fmt.Errorf("system.clusters: %w", err)
		}
		if strings.ContainsAny(host, "',\\") {
			return nil, nil, fmt.Errorf("system.clusters: host name %q", host) // it goes into SQL
		}
		hosts = append(hosts, net.JoinHostPort(host, strconv.Itoa(int(port))))
		shards = append(shards, strconv.Itoa(int(shard)))
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("system.clusters: %w", err)
	}
	if len(hosts) == 0 {
		return nil, nil, fmt.Errorf("cluster %s is not in system.clusters (the server's remote_servers)", r.Cluster)
	}
	return hosts, shards, nil
}

// hasClusterAllReplicas tells whether the server has the
// clusterAllReplicas table function (not 18.16); asked once.
func (r *Reader) hasClusterAllReplicas(ctx context.Context) (bool, error) {
	r.probe.Lock()
	defer r.probe.Unlock()
	if r.probed {
		return r.allReplicas, nil
	}
	var n uint64
	err := r.Conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM clusterAllReplicas('%s', system, one)", r.Cluster)).Scan(&n)
	var ex *clickhouse.Exception
	switch {
	case errors.As(err, &ex) && ex.Code == codeUnknownTableFunction:
		r.allReplicas = false
	case err != nil:
		return false, fmt.Errorf("clusterAllReplicas: %w", err)
	default:
		r.allReplicas = true
	}
	r.probed = true
	return r.allReplicas, nil
}
