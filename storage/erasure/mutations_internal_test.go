package erasure

import (
	"slices"
	"testing"
)

// TestMutationsEveryNode: a cluster's mutation counts as started once
// every shard has it (a replica that has not read it from ZooKeeper yet
// is no reason to issue it again), and as done only once every replica of
// every shard has it and has finished it, each copy.
func TestMutationsEveryNode(t *testing.T) {
	const a, b = "erasure:x/0", "erasure:x/1"
	cmd := func(mark string) string { return "DELETE WHERE (tenant = 'a') AND notEmpty('" + mark + "')" }
	node := func(shard string, cmds map[string]uint8) nodeMutations {
		n := nodeMutations{shard: shard}
		for _, mark := range []string{a, b} {
			if d, ok := cmds[mark]; ok {
				n.commands, n.done = append(n.commands, cmd(mark)), append(n.done, d)
			}
		}
		return n
	}
	m := tableMutations{
		node("1", map[string]uint8{a: 1, b: 1}),
		node("1", map[string]uint8{a: 1}), // b not read from ZooKeeper yet
		node("2", map[string]uint8{a: 0}), // b's ALTER never reached shard 2
		node("2", map[string]uint8{a: 1}),
	}
	if got := m.marks("erasure:x/"); !slices.Equal(got, []string{a, b}) {
		t.Errorf("marks %q, want %q", got, []string{a, b})
	}
	if !m.startedEverywhere(a) || m.startedEverywhere(b) {
		t.Errorf("started everywhere: a %v (want true), b %v (want false)", m.startedEverywhere(a), m.startedEverywhere(b))
	}
	if m.doneEverywhere(a) || m.doneEverywhere(b) {
		t.Error("done while a replica is still running a, or while shard 2 lacks b")
	}
	if m.command(b) != cmd(b) || m.command("erasure:x/2") != "" {
		t.Errorf("command of b %q, of a mark nobody has %q", m.command(b), m.command("erasure:x/2"))
	}
	m[2] = node("2", map[string]uint8{a: 1, b: 1})
	m[3] = node("2", map[string]uint8{a: 1, b: 1})
	m[1] = node("1", map[string]uint8{a: 1, b: 1})
	if !m.doneEverywhere(a) || !m.doneEverywhere(b) {
		t.Error("not done once every node has finished both")
	}
	m[0].commands, m[0].done = append(m[0].commands, cmd(a)), append(m[0].done, 0) // a issued again
	if m.doneEverywhere(a) {
		t.Error("done while a node still runs a second copy")
	}
	if got := (tableMutations{{shard: ""}}).marks("erasure:x/"); len(got) != 0 {
		t.Errorf("marks of a server without mutations: %q", got)
	}
}
