package inject

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// KeyPair serves a TLS certificate from files and loads it again when
// they change — a renewed Secret is swapped in by the kubelet without a
// restart. If a reload fails (a half-written pair), the last good one
// stays in use.
type KeyPair struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	version string // sizes and modification times of both files
}

// LoadKeyPair loads the pair once, so a missing or bad file fails at start.
func LoadKeyPair(certFile, keyFile string) (*KeyPair, error) {
	k := &KeyPair{certFile: certFile, keyFile: keyFile}
	if err := k.reload(); err != nil {
		return nil, err
	}
	return k, nil
}

// GetCertificate is for tls.Config.GetCertificate.
func (k *KeyPair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if v, err := k.stat(); err == nil && v != k.version {
		_ = k.reloadLocked() // on failure keep serving the previous pair
	}
	return k.cert, nil
}

func (k *KeyPair) reload() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.reloadLocked()
}

func (k *KeyPair) reloadLocked() error {
	v, err := k.stat()
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		return fmt.Errorf("tls key pair: %w", err)
	}
	k.cert, k.version = &cert, v
	return nil
}

// stat follows symbolic links, which is how a mounted Secret changes.
func (k *KeyPair) stat() (string, error) {
	var v string
	for _, f := range []string{k.certFile, k.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return "", fmt.Errorf("tls key pair: %w", err)
		}
		v += fmt.Sprintf("%d@%s;", fi.Size(), fi.ModTime().Format(time.RFC3339Nano))
	}
	return v, nil
}
