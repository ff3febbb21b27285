package app

import (
	"testing"

	"github.com/tollgate-dev/tollgate/internal/devtest"
	"github.com/tollgate-dev/tollgate/mockprovider"
	"github.com/tollgate-dev/tollgate/record"
)

// devInstance is `tollgate dev` running in-process against the mock provider.
type devInstance struct {
	dev     *devtest.Dev
	addrs   map[string]string
	dataDir string
	mock    *mockprovider.Server
	stop    func() error
	stderr  *devtest.ReadyWriter
}

func (d *devInstance) url(path string) string { return "http://" + d.addrs["listen"] + path }
func (d *devInstance) api(path string) string { return "http://" + d.addrs["http"] + path }

// generousStoreTimeouts are store limits for instances on a real Redis:
// a round trip is only cut short by a Redis that is down, never by a test
// machine under load (the defaults, 50 ms and 250 ms, are for production).
var generousStoreTimeouts = []string{"--message-timeout", "10s", "--redis-timeout", "5s", "--redis-write-timeout", "5s"}

func startDev(t *testing.T, extraArgs ...string) *devInstance {
	t.Helper()
	dev := devtest.StartDev(t, Run, extraArgs...)
	return &devInstance{dev: dev, addrs: dev.Addrs, dataDir: dev.DataDir, mock: dev.Mock, stop: dev.Stop, stderr: dev.Stderr}
}

// runReady runs Run with args on a goroutine, as cmd/tollgate would, and
// waits for its ready line (the addresses it names). stop cancels it and
// returns Run's error the first time, nil after; it also runs when the test
// ends.
func runReady(t *testing.T, args []string) (addrs map[string]string, stderr *devtest.ReadyWriter, stop func() error) {
	t.Helper()
	return devtest.Start(t, Run, args)
}

// records stops the instance (flushing the log) and reads every record.
func (d *devInstance) records(t *testing.T) map[string]*record.Record {
	t.Helper()
	return d.dev.Records(t)
}
