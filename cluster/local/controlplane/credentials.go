package controlplane

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/netpolcheck/netpolcheck/cluster/local/controlplane/pki"
)

// clusterName names the cluster, user context and CA in generated files.
const clusterName = "netpolcheck-local"

// credentials are the files the components read, all under the state dir.
type credentials struct {
	caCert                string
	apiServerCert         string
	apiServerKey          string
	loopbackCert          string // serving cert of controller-manager and scheduler
	loopbackKey           string
	serviceAccountKey     string
	serviceAccountPub     string
	adminKubeconfig       string
	controllerManagerConf string
	schedulerKubeconfig   string
	kubeProxyKubeconfig   string
	// kubeletClientCert and kubeletClientKey are the API server's client
	// certificate at every kubelet (user KubeletClientUser).
	kubeletClientCert string
	kubeletClientKey  string
	// ca issues the kubelets' serving certificates.
	ca *pki.CA
}

// KubeletClientUser is the name of the API server's client certificate at
// the kubelets, the only user a node's kubelet API lets in.
const KubeletClientUser = "kube-apiserver-kubelet-client"

// writeCredentials creates the CA, every certificate and key, and the
// kubeconfigs of the admin, the controller-manager and the scheduler, which
// reach the API server at serverURL. serviceIP is the first ClusterIP, under
// which pods reach the API server as kubernetes.default.
func writeCredentials(stateDir, serverURL string, serviceIP netip.Addr) (credentials, error) {
	pkiDir := filepath.Join(stateDir, "pki")
	creds := credentials{
		caCert:                filepath.Join(pkiDir, "ca.crt"),
		apiServerCert:         filepath.Join(pkiDir, "apiserver.crt"),
		apiServerKey:          filepath.Join(pkiDir, "apiserver.key"),
		loopbackCert:          filepath.Join(pkiDir, "loopback-serving.crt"),
		loopbackKey:           filepath.Join(pkiDir, "loopback-serving.key"),
		serviceAccountKey:     filepath.Join(pkiDir, "sa.key"),
		serviceAccountPub:     filepath.Join(pkiDir, "sa.pub"),
		adminKubeconfig:       filepath.Join(stateDir, "admin.kubeconfig"),
		controllerManagerConf: filepath.Join(stateDir, "kube-controller-manager.kubeconfig"),
		schedulerKubeconfig:   filepath.Join(stateDir, "kube-scheduler.kubeconfig"),
		kubeProxyKubeconfig:   filepath.Join(stateDir, "kube-proxy.kubeconfig"),
		kubeletClientCert:     filepath.Join(pkiDir, "apiserver-kubelet-client.crt"),
		kubeletClientKey:      filepath.Join(pkiDir, "apiserver-kubelet-client.key"),
	}
	if err := os.MkdirAll(pkiDir, 0o700); err != nil {
		return credentials{}, fmt.Errorf("creating %s: %w", pkiDir, err)
	}

	ca, err := pki.NewCA(clusterName + "-ca")
	if err != nil {
		return credentials{}, err
	}
	loopbackIPs := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	apiServer, err := ca.Issue(pki.Request{
		CommonName: "kube-apiserver",
		DNSNames: []string{
			"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local",
		},
		IPs:   append(loopbackIPs, net.IP(serviceIP.AsSlice())),
		Usage: pki.ServerAuth,
	})
	if err != nil {
		return credentials{}, err
	}
	loopback, err := ca.Issue(pki.Request{
		CommonName: clusterName + "-loopback",
		DNSNames:   []string{"localhost"},
		IPs:        loopbackIPs,
		Usage:      pki.ServerAuth,
	})
	if err != nil {
		return credentials{}, err
	}
	kubeletClient, err := ca.Issue(pki.Request{CommonName: KubeletClientUser, Usage: pki.ClientAuth})
	if err != nil {
		return credentials{}, err
	}
	serviceAccount, err := pki.NewSigningKey()
	if err != nil {
		return credentials{}, err
	}
	files := map[string][]byte{
		creds.caCert:                    ca.CertPEM,
		filepath.Join(pkiDir, "ca.key"): ca.KeyPEM,
		creds.apiServerCert:             apiServer.CertPEM,
		creds.apiServerKey:              apiServer.KeyPEM,
		creds.loopbackCert:              loopback.CertPEM,
		creds.loopbackKey:               loopback.KeyPEM,
		creds.serviceAccountKey:         serviceAccount.KeyPEM,
		creds.serviceAccountPub:         serviceAccount.CertPEM,
		creds.kubeletClientCert:         kubeletClient.CertPEM,
		creds.kubeletClientKey:          kubeletClient.KeyPEM,
	}
	for path, data := range files {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return credentials{}, fmt.Errorf("writing %s: %w", path, err)
		}
	}

	// The bootstrap RBAC policy grants system:kube-controller-manager,
	// system:kube-scheduler and system:kube-proxy (through the
	// system:node-proxier binding) exactly what those components need;
	// system:masters is the superuser group.
	users := []struct {
		path, commonName, group string
	}{
		{creds.adminKubeconfig, clusterName + "-admin", "system:masters"},
		{creds.controllerManagerConf, "system:kube-controller-manager", ""},
		{creds.schedulerKubeconfig, "system:kube-scheduler", ""},
		{creds.kubeProxyKubeconfig, "system:kube-proxy", ""},
	}
	for _, user := range users {
		req := pki.Request{CommonName: user.commonName, Usage: pki.ClientAuth}
		if user.group != "" {
			req.Organizations = []string{user.group}
		}
		client, err := ca.Issue(req)
		if err != nil {
			return credentials{}, err
		}
		if err := writeKubeconfig(user.path, serverURL, ca.CertPEM, user.commonName, client); err != nil {
			return credentials{}, err
		}
	}
	creds.ca = ca
	return creds, nil
}

// KubeletCredentials are the files of a node's kubelet API.
type KubeletCredentials struct {
	// CertFile and KeyFile are its serving certificate, ClientCAFile the CA
	// of the API server's client certificate.
	CertFile, KeyFile, ClientCAFile string
}

// WriteKubeletCredentials issues a node's kubelet serving certificate from
// the cluster CA, for its name and address (the API server verifies it with
// --kubelet-certificate-authority), and writes it with the CA into dir.
func (cp *ControlPlane) WriteKubeletCredentials(dir, nodeName string, ip net.IP) (KubeletCredentials, error) {
	serving, err := cp.ca.Issue(pki.Request{CommonName: nodeName, DNSNames: []string{nodeName}, IPs: []net.IP{ip}, Usage: pki.ServerAuth})
	if err != nil {
		return KubeletCredentials{}, err
	}
	k := KubeletCredentials{
		CertFile:     filepath.Join(dir, "kubelet.crt"),
		KeyFile:      filepath.Join(dir, "kubelet.key"),
		ClientCAFile: filepath.Join(dir, "ca.crt"),
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return k, fmt.Errorf("creating %s: %w", dir, err)
	}
	for path, data := range map[string][]byte{k.CertFile: serving.CertPEM, k.KeyFile: serving.KeyPEM, k.ClientCAFile: cp.ca.CertPEM} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return k, fmt.Errorf("writing %s: %w", path, err)
		}
	}
	return k, nil
}

// writeKubeconfig writes a kubeconfig with one cluster, one user
// authenticating with a client certificate, and a current context for both.
func writeKubeconfig(path, serverURL string, caPEM []byte, userName string, client pki.KeyPair) error {
	config := clientcmdapi.NewConfig()
	config.Clusters[clusterName] = &clientcmdapi.Cluster{
		Server:                   serverURL,
		CertificateAuthorityData: caPEM,
	}
	config.AuthInfos[userName] = &clientcmdapi.AuthInfo{
		ClientCertificateData: client.CertPEM,
		ClientKeyData:         client.KeyPEM,
	}
	config.Contexts[clusterName] = &clientcmdapi.Context{Cluster: clusterName, AuthInfo: userName}
	config.CurrentContext = clusterName
	if err := clientcmd.WriteToFile(*config, path); err != nil {
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	return nil
}
