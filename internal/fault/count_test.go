package fault

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/storage/chschema"
)

// logDB is one scenario's ClickHouse database.
type logDB struct {
	t    *testing.T
	url  string // --clickhouse value
	name string
	conn driver.Conn
}

// newLogDB names a database of its own on the server at serverURL
// (clickhouse://host:port) and drops it when the test ends. Tollgate
// creates it (its migration) when it starts.
func newLogDB(t *testing.T, serverURL, scenario string) *logDB {
	t.Helper()
	name := fmt.Sprintf("tollgate_fault_%s_%d", scenario, time.Now().UnixNano())
	url := serverURL + "/" + name
	conn, _, err := chschema.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name)
		_ = conn.Close()
	})
	return &logDB{t: t, url: url, name: name, conn: conn}
}

// waitMigrated waits until Tollgate's background migration created the
// requests table, so a scenario breaks things after it, not during it.
func (d *logDB) waitMigrated() {
	d.t.Helper()
	testenv.Eventually(d.t, 60*time.Second, func() error {
		var n uint8
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := d.conn.QueryRow(ctx, "EXISTS TABLE "+d.name+".requests").Scan(&n); err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("%s.requests does not exist yet", d.name)
		}
		return nil
	})
}

// tally is what ClickHouse holds for a scenario.
type tally struct {
	final    int            // count() with FINAL: what a report counts
	distinct int            // distinct request ids
	perID    map[string]int // rows per id, with FINAL
}

// duplicated is what a FINAL query over-counts: rows beyond one per id.
func (c tally) duplicated() int { return c.final - c.distinct }

// lost is how many of ids have no row.
func (c tally) lost(ids []string) (n int, missing []string) {
	for _, id := range ids {
		if c.perID[id] == 0 {
			n++
			if len(missing) < 5 {
				missing = append(missing, id)
			}
		}
	}
	return n, missing
}

// count reads the rows of the scenario's requests table (where: an extra
// condition, or "").
func (d *logDB) count(where string) (tally, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if where != "" {
		where = " WHERE " + where
	}
	c := tally{perID: map[string]int{}}
	rows, err := d.conn.Query(ctx, "SELECT toString(request_id), count() FROM "+d.name+".requests FINAL"+where+" GROUP BY request_id")
	if err != nil {
		return c, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var n uint64
		if err := rows.Scan(&id, &n); err != nil {
			return c, err
		}
		c.perID[id] = int(n)
		c.final += int(n)
	}
	if err := rows.Err(); err != nil {
		return c, err
	}
	var distinct uint64
	if err := d.conn.QueryRow(ctx, "SELECT uniqExact(request_id) FROM "+d.name+".requests"+where).Scan(&distinct); err != nil {
		return c, err
	}
	c.distinct = int(distinct)
	return c, nil
}

// waitRows waits until every one of ids has a row, and returns the tally.
// A scenario asserts on the tally afterwards, so a row that never comes
// fails with the exact count rather than a timeout alone.
func (d *logDB) waitRows(ids []string, within time.Duration) tally {
	d.t.Helper()
	var c tally
	deadline := time.Now().Add(within)
	for {
		var err error
		c, err = d.count("")
		if err == nil {
			if n, _ := c.lost(ids); n == 0 {
				return c
			}
		}
		if time.Now().After(deadline) {
			if err != nil {
				d.t.Fatalf("counting rows: %v", err)
			}
			return c
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// quoteIDs is ids as a ClickHouse IN list.
func quoteIDs(ids []string) string {
	q := make([]string, len(ids))
	for i, id := range ids {
		q[i] = "'" + id + "'"
	}
	return "(" + strings.Join(q, ",") + ")"
}
