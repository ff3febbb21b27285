// Package chcluster holds the tests that run Tollgate's ClickHouse schema,
// log writer and queries on a replicated, sharded cluster (two shards of
// two replicas each, with ZooKeeper, all private processes started by
// internal/testenv) and compare the answers with one server's. It has no
// code of its own: cluster mode lives in chschema (cluster.go).
package chcluster
