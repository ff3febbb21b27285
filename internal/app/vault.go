package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/policies/vault"
)

// openVault watches --key-vault. Without one the returned watcher is nil
// (its Current too): every proxy key is refused. A broken file at start is
// an error; later a broken edit keeps the last good vault.
func openVault(cfg *Config, reg prometheus.Registerer, log *slog.Logger) (*vault.Watcher, error) {
	if cfg.KeyVault == "" {
		return nil, nil
	}
	w, err := vault.Watch(cfg.KeyVault, 0, log, reg)
	if err != nil {
		return nil, fmt.Errorf("key-vault: %w", err)
	}
	return w, nil
}

// runVault is `tollgate vault issue`: it makes a proxy key and prints it
// once, with the vault entry that holds only its SHA-256.
func runVault(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "issue" {
		fmt.Fprintln(stderr, "usage: tollgate vault issue --id ID --tenant TENANT [--provider openai|anthropic|azure|gemini|together|groq|NAME]")
		return errors.New("vault: the only command is issue")
	}
	fs := flag.NewFlagSet("vault issue", flag.ContinueOnError)
	fs.SetOutput(stderr)
	id := fs.String("id", "", "the key's id: in records and the egress policy's match.proxyKeys")
	tenant := fs.String("tenant", "", "the tenant calls with this key belong to")
	prov := fs.String("provider", "openai", "the provider the key is for (openai, anthropic, azure, gemini, together, groq or an --openai-compatible name): the only one whose routes it may take")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError(fs, err)
	}
	if *id == "" || *tenant == "" {
		return errors.New("vault issue: --id and --tenant are required")
	}
	key, sum, err := vault.Issue()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, `# The proxy key, shown once: give it to the application as its provider key.
# %s
#
# The vault entry (add it to the --key-vault Secret, with the provider key):
- id: %q
  tenant: %q
  provider: %s
  origins: []       # other origins the key may go to (an azure key needs its resources)
  proxyKeySHA256: %s
  providerKey: ""   # the provider's own key
`, key, *id, *tenant, *prov, sum)
	return nil
}
