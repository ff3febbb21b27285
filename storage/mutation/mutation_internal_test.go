package mutation

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
	node := func(shard string, cmds map[string]uint8) Node {
		n := Node{Shard: shard}
		for _, mark := range []string{a, b} {
			if d, ok := cmds[mark]; ok {
				n.Commands, n.Done = append(n.Commands, cmd(mark)), append(n.Done, d)
			}
		}
		return n
	}
	m := Table{
		node("1", map[string]uint8{a: 1, b: 1}),
		node("1", map[string]uint8{a: 1}), // b not read from ZooKeeper yet
		node("2", map[string]uint8{a: 0}), // b's ALTER never reached shard 2
		node("2", map[string]uint8{a: 1}),
	}
	if got := m.Marks("erasure:x/"); !slices.Equal(got, []string{a, b}) {
		t.Errorf("marks %q, want %q", got, []string{a, b})
	}
	if !m.StartedEverywhere(a) || m.StartedEverywhere(b) {
		t.Errorf("started everywhere: a %v (want true), b %v (want false)", m.StartedEverywhere(a), m.StartedEverywhere(b))
	}
	if m.DoneEverywhere(a) || m.DoneEverywhere(b) {
		t.Error("done while a replica is still running a, or while shard 2 lacks b")
	}
	if m.Command(b) != cmd(b) || m.Command("erasure:x/2") != "" {
		t.Errorf("command of b %q, of a mark nobody has %q", m.Command(b), m.Command("erasure:x/2"))
	}
	m[2] = node("2", map[string]uint8{a: 1, b: 1})
	m[3] = node("2", map[string]uint8{a: 1, b: 1})
	m[1] = node("1", map[string]uint8{a: 1, b: 1})
	if !m.DoneEverywhere(a) || !m.DoneEverywhere(b) {
		t.Error("not done once every node has finished both")
	}
	m[0].Commands, m[0].Done = append(m[0].Commands, cmd(a)), append(m[0].Done, 0) // a issued again
	if m.DoneEverywhere(a) {
		t.Error("done while a node still runs a second copy")
	}
	if got := (Table{{Shard: ""}}).Marks("erasure:x/"); len(got) != 0 {
		t.Errorf("marks of a server without mutations: %q", got)
	}
}
