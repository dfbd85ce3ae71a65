package buildkittest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// EnvBuildkitdBin names the buildkitd binary `make test` built.
const EnvBuildkitdBin = "ARBOR_TEST_BUILDKITD_BIN"

// TLSDaemon is a buildkitd of a test's own that speaks mutual TLS on a
// loopback TCP port.
type TLSDaemon struct {
	Addr string // tcp://127.0.0.1:PORT
	// CA signed both certificates; ClientCert and ClientKey are a client's.
	CA, ClientCert, ClientKey string
}

// StartTLSBuildkitd starts buildkitd as StartRegistry starts a registry:
// its own state directory, stopped when the test ends. It needs root, like
// hack/buildkit.sh's daemon, and is for tests of the TLS connection; builds
// go to the shared daemon.
func StartTLSBuildkitd(t testing.TB) TLSDaemon {
	t.Helper()
	bin := need(t, EnvBuildkitdBin)
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatalf("runc: %v (hack/buildkit.sh up installs it)", err)
	}
	dir := t.TempDir()
	d := writeCerts(t, dir)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	l.Close()
	d.Addr = "tcp://" + host
	var out bytes.Buffer
	cmd := exec.Command(bin, "--root", filepath.Join(dir, "root"), "--addr", d.Addr,
		"--tlscacert", d.CA, "--tlscert", filepath.Join(dir, "server.pem"), "--tlskey", filepath.Join(dir, "server-key.pem"),
		"--oci-worker-snapshotter=native", "--oci-worker-binary="+runc, "--containerd-worker=false")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start buildkitd: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("buildkitd on %s said:\n%s", host, out.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", host, time.Second)
		if err == nil {
			c.Close()
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("buildkitd on %s: %v\n%s", host, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeCerts makes a CA, a server certificate for 127.0.0.1 and a client
// certificate, as PEM files in dir.
func writeCerts(t testing.TB, dir string) TLSDaemon {
	t.Helper()
	caKey, caCert := newCert(t, nil, nil, &x509.Certificate{
		Subject: pkix.Name{CommonName: "arbor test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	})
	write := func(name string, blocks ...*pem.Block) string {
		var b bytes.Buffer
		for _, bl := range blocks {
			pem.Encode(&b, bl)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pair := func(name string, tmpl *x509.Certificate) (string, string) {
		key, c := newCert(t, caKey, caCert, tmpl)
		kb, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return write(name+".pem", &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}),
			write(name+"-key.pem", &pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	}
	pair("server", &x509.Certificate{Subject: pkix.Name{CommonName: "buildkitd"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature})
	cert, key := pair("client", &x509.Certificate{Subject: pkix.Name{CommonName: "arbor"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature})
	return TLSDaemon{CA: write("ca.pem", &pem.Block{Type: "CERTIFICATE", Bytes: caCert.Raw}), ClientCert: cert, ClientKey: key}
}

// newCert signs tmpl with the parent (self-signed when parent is nil).
func newCert(t testing.TB, parentKey *ecdsa.PrivateKey, parent *x509.Certificate, tmpl *x509.Certificate) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl.SerialNumber = serial
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatalf("certificate %s: %v", tmpl.Subject.CommonName, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, c
}
