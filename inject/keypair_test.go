package inject

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeSelfSigned writes a fresh certificate for cn and its key.
func writeSelfSigned(t *testing.T, certFile, keyFile, cn string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     []string{cn},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func servedName(t *testing.T, k *KeyPair) string {
	t.Helper()
	c, err := k.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.Subject.CommonName
}

func TestWebhookKeyPairReloads(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeSelfSigned(t, certFile, keyFile, "old.example")
	k, err := LoadKeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := servedName(t, k); got != "old.example" {
		t.Fatalf("serving %s", got)
	}

	writeSelfSigned(t, certFile, keyFile, "new.example")
	future := time.Now().Add(time.Second) // a coarse file clock must still see a change
	os.Chtimes(certFile, future, future)
	if got := servedName(t, k); got != "new.example" {
		t.Fatalf("after renewal serving %s", got)
	}

	// A half-written renewal keeps the last good pair.
	os.WriteFile(keyFile, []byte("not a key"), 0o600)
	if got := servedName(t, k); got != "new.example" {
		t.Fatalf("after a bad renewal serving %s", got)
	}

	if _, err := LoadKeyPair(filepath.Join(dir, "missing.crt"), keyFile); err == nil {
		t.Fatal("a missing file was accepted")
	}
}

// secretVolume lays out files as the kubelet's atomic writer does for a
// Secret volume: dir/tls.crt -> ..data/tls.crt, ..data -> ..<version>/.
// swap writes a new version and repoints ..data in one rename.
type secretVolume struct {
	t   *testing.T
	dir string
	n   int
}

func (v *secretVolume) swap(cn string) {
	v.t.Helper()
	v.n++
	version := fmt.Sprintf("..2026_12_07_03_00_%02d.%d", v.n, v.n)
	if err := os.Mkdir(filepath.Join(v.dir, version), 0o755); err != nil {
		v.t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(v.dir, version, "tls.crt"), filepath.Join(v.dir, version, "tls.key")
	writeSelfSigned(v.t, certFile, keyFile, cn)
	// A renewal the file metadata cannot tell apart: the same sizes and
	// modification times as the pair it replaces (ECDSA signatures vary
	// in length, so draw until the sizes match).
	if prev, err := os.Stat(filepath.Join(v.dir, "tls.crt")); err == nil {
		prevKey, _ := os.Stat(filepath.Join(v.dir, "tls.key"))
		for i := 0; i < 200; i++ {
			if fi, _ := os.Stat(certFile); fi.Size() == prev.Size() {
				break
			}
			writeSelfSigned(v.t, certFile, keyFile, cn)
		}
		os.Chtimes(certFile, prev.ModTime(), prev.ModTime())
		os.Chtimes(keyFile, prevKey.ModTime(), prevKey.ModTime())
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(version, tmp); err != nil {
		v.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		v.t.Fatal(err)
	}
	for _, f := range []string{"tls.crt", "tls.key"} {
		if _, err := os.Lstat(filepath.Join(v.dir, f)); err != nil {
			if err := os.Symlink(filepath.Join("..data", f), filepath.Join(v.dir, f)); err != nil {
				v.t.Fatal(err)
			}
		}
	}
}

// handshakeName is the common name of the certificate a TLS server on lis
// presents to a new connection.
func handshakeName(t *testing.T, addr string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // only the name is looked at
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// TestWebhookServesRenewedCertificate: after the kubelet swaps a renewed
// Secret into the volume, the next TLS handshake presents the new
// certificate, with no restart; a broken renewal keeps the old one.
func TestWebhookServesRenewedCertificate(t *testing.T) {
	vol := &secretVolume{t: t, dir: t.TempDir()}
	vol.swap("renew-1.tollgate-injector.tollgate.svc")
	k, err := LoadKeyPair(filepath.Join(vol.dir, "tls.crt"), filepath.Join(vol.dir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: k.GetCertificate})
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() { c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	addr := lis.Addr().String()

	if got := handshakeName(t, addr); got != "renew-1.tollgate-injector.tollgate.svc" {
		t.Fatalf("serving %s", got)
	}
	vol.swap("renew-2.tollgate-injector.tollgate.svc")
	if got := handshakeName(t, addr); got != "renew-2.tollgate-injector.tollgate.svc" {
		t.Fatalf("after the Secret's renewal serving %s", got)
	}
	vol.swap("renew-3.tollgate-injector.tollgate.svc")
	if got := handshakeName(t, addr); got != "renew-3.tollgate-injector.tollgate.svc" {
		t.Fatalf("after the second renewal serving %s", got)
	}
	// A key that does not match the certificate: the last good pair stays.
	if err := os.WriteFile(filepath.Join(vol.dir, "tls.key"), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := handshakeName(t, addr); got != "renew-3.tollgate-injector.tollgate.svc" {
		t.Fatalf("after a broken renewal serving %s", got)
	}
}
