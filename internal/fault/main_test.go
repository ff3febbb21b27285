package fault

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/app"
)

// childEnv carries the arguments of a `tollgate` child process: the test
// binary re-executes itself with it set, and TestMain runs app.Run instead
// of the tests. A real process is what SIGKILL needs, and no `go build` is.
const childEnv = "TOLLGATE_FAULT_CHILD_ARGS"

// scaleEnv chooses the burst sizes: "large" for `make fault`, anything
// else the short bursts of `make test`.
const scaleEnv = "TOLLGATE_FAULT_SCALE"

func TestMain(m *testing.M) {
	if raw := os.Getenv(childEnv); raw != "" {
		os.Exit(runChild(raw))
	}
	code := m.Run()
	printFigures()
	os.Exit(code)
}

// runChild is cmd/tollgate's main with the arguments from the environment.
func runChild(raw string) int {
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		fmt.Fprintln(os.Stderr, "fault child: bad", childEnv, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, args, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "tollgate:", err)
		return 1
	}
	return 0
}

// large reports whether the suite runs at `make fault` scale.
func large() bool { return os.Getenv(scaleEnv) == "large" }

// size picks the short or the large figure.
func size(short, big int) int {
	if large() {
		return big
	}
	return short
}

// figures is one scenario's line in the table `make fault` prints.
type figures struct {
	scenario                               string
	sent, answered, rows, lost, duplicated int
	dropped                                int // records dropped by design and counted in /metrics
	note                                   string
}

var (
	figuresMu sync.Mutex
	table     []figures
)

// report logs a scenario's figures and keeps them for the table.
func report(t *testing.T, f figures) {
	t.Helper()
	t.Logf("%s: sent %d, answered %d, rows %d, lost %d, duplicated %d, dropped (counted) %d %s",
		f.scenario, f.sent, f.answered, f.rows, f.lost, f.duplicated, f.dropped, f.note)
	figuresMu.Lock()
	table = append(table, f)
	figuresMu.Unlock()
}

// printFigures prints the table (Markdown, as docs/reliability.md quotes
// it) when a scenario reported figures.
func printFigures() {
	figuresMu.Lock()
	defer figuresMu.Unlock()
	if len(table) == 0 {
		return
	}
	scale := "short"
	if large() {
		scale = "large"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nfault suite figures (%s scale):\n\n", scale)
	b.WriteString("| scenario | sent | answered | rows | lost | duplicated | dropped (counted) | note |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, f := range table {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %s |\n",
			f.scenario, f.sent, f.answered, f.rows, f.lost, f.duplicated, f.dropped, f.note)
	}
	fmt.Print(b.String())
}
