package inject

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"os"
	"sync"
)

// KeyPair serves a TLS certificate from files and loads it again when
// they change — a renewed Secret (cert-manager renews the injector's
// certificate well before it expires) is swapped in by the kubelet without
// a restart. The kubelet updates a Secret volume by pointing its "..data"
// symlink at a new folder, which a watch on the old files never sees; so,
// like the project's other hot-reloaded files (policies/internal/poll), the
// paths are read again, here at every TLS handshake (a few hundred bytes,
// and the API server keeps its connections). The contents, not modification
// times, tell a change: a renewal within the file clock's resolution, or
// with an older timestamp, is still seen. If a reload fails (a half-written
// pair), the last good one stays in use.
type KeyPair struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	certPEM []byte
	keyPEM  []byte
}

// LoadKeyPair loads the pair once, so a missing or bad file fails at start.
func LoadKeyPair(certFile, keyFile string) (*KeyPair, error) {
	k := &KeyPair{certFile: certFile, keyFile: keyFile}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.reloadLocked(); err != nil {
		return nil, err
	}
	return k, nil
}

// GetCertificate is for tls.Config.GetCertificate.
func (k *KeyPair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	_ = k.reloadLocked() // on failure keep serving the previous pair
	return k.cert, nil
}

func (k *KeyPair) reloadLocked() error {
	certPEM, err := os.ReadFile(k.certFile)
	if err != nil {
		return fmt.Errorf("tls key pair: %w", err)
	}
	keyPEM, err := os.ReadFile(k.keyFile)
	if err != nil {
		return fmt.Errorf("tls key pair: %w", err)
	}
	if k.cert != nil && bytes.Equal(certPEM, k.certPEM) && bytes.Equal(keyPEM, k.keyPEM) {
		return nil
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("tls key pair: %w", err)
	}
	k.cert, k.certPEM, k.keyPEM = &cert, certPEM, keyPEM
	return nil
}
