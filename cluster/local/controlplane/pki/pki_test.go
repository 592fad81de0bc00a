package pki

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"testing"
)

func parseCert(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("not a PEM certificate: %q", certPEM)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestIssuedCertificatesVerifyAgainstCA(t *testing.T) {
	ca, err := NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	if !parseCert(t, ca.CertPEM).IsCA {
		t.Fatal("CA certificate is not a CA")
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.CertPEM)

	server, err := ca.Issue(Request{
		CommonName: "kube-apiserver",
		DNSNames:   []string{"kubernetes.default.svc"},
		IPs:        []net.IP{net.IPv4(10, 96, 0, 1)},
		Usage:      ServerAuth,
	})
	if err != nil {
		t.Fatal(err)
	}
	serverCert := parseCert(t, server.CertPEM)
	if _, err := serverCert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "kubernetes.default.svc"}); err != nil {
		t.Errorf("server certificate for its DNS name: %v", err)
	}
	if err := serverCert.VerifyHostname("10.96.0.1"); err != nil {
		t.Errorf("server certificate for its IP: %v", err)
	}
	if _, err := tls.X509KeyPair(server.CertPEM, server.KeyPEM); err != nil {
		t.Errorf("server certificate and key do not match: %v", err)
	}

	client, err := ca.Issue(Request{CommonName: "admin", Organizations: []string{"system:masters"}, Usage: ClientAuth})
	if err != nil {
		t.Fatal(err)
	}
	clientCert := parseCert(t, client.CertPEM)
	opts := x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if _, err := clientCert.Verify(opts); err != nil {
		t.Errorf("client certificate: %v", err)
	}
	if got := clientCert.Subject.Organization; len(got) != 1 || got[0] != "system:masters" {
		t.Errorf("client organizations = %v, want [system:masters]", got)
	}
	opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	if _, err := clientCert.Verify(opts); err == nil {
		t.Error("a client certificate verifies for server authentication")
	}
}

func TestSigningKeyPair(t *testing.T) {
	pair, err := NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	pubBlock, _ := pem.Decode(pair.CertPEM)
	keyBlock, _ := pem.Decode(pair.KeyPEM)
	if pubBlock == nil || pubBlock.Type != "PUBLIC KEY" || keyBlock == nil || keyBlock.Type != "PRIVATE KEY" {
		t.Fatalf("unexpected PEM blocks: %q / %q", pair.CertPEM, pair.KeyPEM)
	}
	pub, err := x509.ParsePKIXPublicKey(pubBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.ParsePKCS8PrivateKey(keyBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !key.(*ecdsa.PrivateKey).PublicKey.Equal(pub) {
		t.Error("public key does not belong to the private key")
	}
}
