// Package pki creates the certificates and keys of a local Kubernetes control
// plane: a certificate authority, serving and client certificates issued by
// it, and a service-account signing key pair. Keys are ECDSA P-256, which
// every control-plane component accepts and which is fast to generate.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// validity is how long issued certificates are valid. A local cluster lives
// for hours at most; a year leaves room for clock skew and long sessions.
const validity = 365 * 24 * time.Hour

// CA is a certificate authority that can issue certificates.
type CA struct {
	cert *x509.Certificate
	key  crypto.Signer
	// CertPEM is the CA certificate, PEM-encoded.
	CertPEM []byte
	// KeyPEM is the CA private key, PEM-encoded (PKCS #8).
	KeyPEM []byte
}

// Usage says what an issued certificate is for.
type Usage int

// The usages a certificate can be issued for.
const (
	ServerAuth Usage = iota
	ClientAuth
)

// Request describes a certificate to issue.
type Request struct {
	CommonName    string
	Organizations []string
	DNSNames      []string
	IPs           []net.IP
	Usage         Usage
}

// KeyPair is a PEM-encoded certificate or public key and its private key.
type KeyPair struct {
	CertPEM []byte
	KeyPEM  []byte
}

// NewCA creates a self-signed certificate authority.
func NewCA(commonName string) (*CA, error) {
	key, keyPEM, err := newKey()
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("creating CA certificate %q: %w", commonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing CA certificate %q: %w", commonName, err)
	}
	return &CA{cert: cert, key: key, CertPEM: encode("CERTIFICATE", der), KeyPEM: keyPEM}, nil
}

// Issue creates a key and a certificate for req signed by the CA.
func (ca *CA) Issue(req Request) (KeyPair, error) {
	key, keyPEM, err := newKey()
	if err != nil {
		return KeyPair{}, err
	}
	serial, err := newSerial()
	if err != nil {
		return KeyPair{}, err
	}
	extUsage := x509.ExtKeyUsageServerAuth
	if req.Usage == ClientAuth {
		extUsage = x509.ExtKeyUsageClientAuth
	}
	now := time.Now()
	template := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: req.CommonName, Organization: req.Organizations},
		DNSNames:     req.DNSNames,
		IPAddresses:  req.IPs,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{extUsage},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca.cert, key.Public(), ca.key)
	if err != nil {
		return KeyPair{}, fmt.Errorf("issuing certificate %q: %w", req.CommonName, err)
	}
	return KeyPair{CertPEM: encode("CERTIFICATE", der), KeyPEM: keyPEM}, nil
}

// NewSigningKey creates a key pair for signing service-account tokens; the
// CertPEM field of the result holds the PEM-encoded public key.
func NewSigningKey() (KeyPair, error) {
	key, keyPEM, err := newKey()
	if err != nil {
		return KeyPair{}, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return KeyPair{}, fmt.Errorf("encoding service-account public key: %w", err)
	}
	return KeyPair{CertPEM: encode("PUBLIC KEY", pubDER), KeyPEM: keyPEM}, nil
}

func newKey() (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating ECDSA key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding private key: %w", err)
	}
	return key, encode("PRIVATE KEY", der), nil
}

func newSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generating certificate serial number: %w", err)
	}
	return serial, nil
}

func encode(blockType string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der})
}
