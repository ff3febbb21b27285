package chschema

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestCheckVersion walks a database through the states a serving process
// can meet: absent, empty, older than the binary, current, newer.
func TestCheckVersion(t *testing.T) {
	base := sharedURL(t)
	ctx := ctxT(t, 60*time.Second)
	db := fmt.Sprintf("chschema_ver_%d_%04x", time.Now().UnixNano()%1e9, rand.N(1<<16))
	url := base + "/" + db
	conn := chConn(t, strings.TrimPrefix(base, "clickhouse://"))
	t.Cleanup(func() { conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })

	behind := func(state string, wantFound uint32, wantMissing bool) {
		t.Helper()
		found, err := CheckVersion(ctx, conn, db, "")
		var b *BehindError
		if !errors.As(err, &b) {
			t.Fatalf("%s: CheckVersion = %d, %v; want a BehindError", state, found, err)
		}
		if b.Database != db || b.Found != wantFound || b.Needed != SchemaVersion() || (len(b.Missing) > 0) != wantMissing {
			t.Errorf("%s: %+v", state, b)
		}
		// The message names the database, both versions (or the missing
		// tables) and the fix.
		msg := err.Error()
		for _, want := range []string{db, fmt.Sprint(SchemaVersion()), "tollgate migrate"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: %q does not say %q", state, msg, want)
			}
		}
		if !wantMissing && !strings.Contains(msg, fmt.Sprintf("version %d,", wantFound)) {
			t.Errorf("%s: %q does not name the version found", state, msg)
		}
	}

	behind("no database", 0, true)
	if err := conn.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatal(err)
	}
	behind("empty database", 0, true)

	// Migrated up to version 5 by an older binary.
	mconn := openURL(t, url)
	log, _ := testLogger(t)
	m := &migrator{conn: mconn, db: db, log: log}
	if err := m.run(ctx, migrations[:5]); err != nil {
		t.Fatal(err)
	}
	behind("at version 5", 5, false)

	if err := Migrate(ctx, url, log); err != nil {
		t.Fatal(err)
	}
	if found, err := CheckVersion(ctx, conn, db, ""); err != nil || found != SchemaVersion() {
		t.Errorf("migrated: CheckVersion = %d, %v", found, err)
	}

	// A process in cluster mode does not write to this single-server
	// database, whatever its version: the message says why and the fix.
	_, err := CheckVersion(ctx, conn, db, "tollgate")
	var b *BehindError
	if !errors.As(err, &b) || !strings.Contains(err.Error(), "single-server requests table") || !strings.Contains(err.Error(), db) {
		t.Errorf("cluster mode on a single-server database: %v; want a BehindError naming the mode", err)
	}

	// A newer binary migrated further (rolling upgrade): still fine.
	newer := SchemaVersion() + 1
	if err := (&migrator{conn: mconn, db: db, f: m.f}).record(ctx, migration{version: newer, name: "from the future"}); err != nil {
		t.Fatal(err)
	}
	if found, err := CheckVersion(ctx, conn, db, ""); err != nil || found != newer {
		t.Errorf("newer schema: CheckVersion = %d, %v; want %d, nil", found, err, newer)
	}
}

// TestCheckVersionUnreachable: a check that cannot be made is an error,
// not a verdict on the schema.
func TestCheckVersionUnreachable(t *testing.T) {
	conn := chConn(t, "127.0.0.1:1")
	_, err := CheckVersion(ctxT(t, 10*time.Second), conn, "tollgate", "")
	var b *BehindError
	if err == nil || errors.As(err, &b) {
		t.Fatalf("CheckVersion against nothing: %v", err)
	}
}
