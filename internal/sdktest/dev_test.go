package sdktest

import (
	"testing"

	"github.com/tollgate-dev/tollgate/internal/app"
	"github.com/tollgate-dev/tollgate/internal/devtest"
	"github.com/tollgate-dev/tollgate/mockprovider"
	"github.com/tollgate-dev/tollgate/record"
)

// dev is `tollgate dev` running in-process, its OpenAI and Anthropic
// upstreams a mock provider.
type dev struct {
	dev     *devtest.Dev
	addrs   map[string]string
	dataDir string
	mock    *mockprovider.Server
	stderr  *devtest.ReadyWriter
	stop    func() error
}

// base is the data plane's URL with path appended: an SDK's base URL.
func (d *dev) base(path string) string { return "http://" + d.addrs["listen"] + path }
func (d *dev) api(path string) string  { return "http://" + d.addrs["http"] + path }

// startDev runs `tollgate dev` as cmd/tollgate would, with extra flags,
// and waits for its ready line. It stops when the test ends.
func startDev(t *testing.T, extra ...string) *dev {
	t.Helper()
	d := devtest.StartDev(t, app.Run, extra...)
	return &dev{dev: d, addrs: d.Addrs, dataDir: d.DataDir, mock: d.Mock, stderr: d.Stderr, stop: d.Stop}
}

// records stops the instance (flushing its log) and reads every record of
// requests.jsonl by request id.
func (d *dev) records(t *testing.T) map[string]*record.Record {
	t.Helper()
	return d.dev.Records(t)
}
