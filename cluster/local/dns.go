package local

import (
	"context"
	"fmt"
	"net"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/netpolcheck/netpolcheck/cluster/local/controlplane"
	"github.com/netpolcheck/netpolcheck/cluster/local/netns"
	"github.com/netpolcheck/netpolcheck/cluster/local/topology"
	"github.com/netpolcheck/netpolcheck/reference-cni/kubeclient"
)

// The cluster DNS: CoreDNS in kube-system, labelled k8s-app=kube-dns like
// upstream's, behind the Service kube-dns at ClusterDNSIP. It serves the
// cluster's names only: there is no upstream resolver, so nothing leaves the
// machine and other names fail.
const (
	// ClusterDNSIP is the kube-dns Service's ClusterIP.
	ClusterDNSIP = "10.96.0.10"
	// ClusterDomain is the cluster's DNS domain.
	ClusterDomain     = "cluster.local"
	dnsName           = "coredns"
	dnsAppLabel       = "k8s-app"
	dnsAppValue       = "kube-dns"
	dnsConfigDir      = "/etc/coredns"
	dnsKubeconfigKey  = "kubeconfig"
	dnsTokenLifetime  = 30 * 24 * time.Hour
	dnsReadyTimeout   = 60 * time.Second
	inClusterAPIHost  = "https://10.96.0.1:443"
	dnsServiceAccount = "coredns"
)

// corefile serves the cluster domain and the reverse zones from the API
// (through the kubeconfig in the auth/ directory next to it).
const corefile = `.:53 {
    errors
    ready
    kubernetes ` + ClusterDomain + ` in-addr.arpa ip6.arpa {
        kubeconfig auth/` + dnsKubeconfigKey + `
        pods insecure
        ttl 5
    }
}
`

// installDNS creates CoreDNS with its credentials, configuration,
// Deployment and Service. CoreDNS reaches the API server as in a real
// cluster, at the kubernetes Service, with a token of its ServiceAccount.
func installDNS(ctx context.Context, client kubernetes.Interface, caPEM []byte) error {
	const ns = metav1.NamespaceSystem
	labels := map[string]string{dnsAppLabel: dnsAppValue}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: dnsServiceAccount, Namespace: ns}}
	if _, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("cluster DNS: creating its service account: %w", err)
	}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "system:coredns"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"endpoints", "services", "pods", "namespaces"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
		},
	}
	if _, err := client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("cluster DNS: creating its cluster role: %w", err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "system:coredns"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: ns}},
	}
	if _, err := client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("cluster DNS: binding its cluster role: %w", err)
	}
	kubeconfig, err := dnsKubeconfig(ctx, client, caPEM)
	if err != nil {
		return err
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: dnsName + "-kubeconfig", Namespace: ns},
		Data:       map[string][]byte{dnsKubeconfigKey: kubeconfig},
	}
	if _, err := client.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("cluster DNS: creating its kubeconfig secret: %w", err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: dnsName, Namespace: ns}, Data: map[string]string{"Corefile": corefile}}
	if _, err := client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("cluster DNS: creating its configuration: %w", err)
	}
	if _, err := client.AppsV1().Deployments(ns).Create(ctx, dnsDeployment(labels, secret.Name, cm.Name), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("cluster DNS: creating its deployment: %w", err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Namespace: ns, Labels: labels},
		Spec: corev1.ServiceSpec{
			ClusterIP: ClusterDNSIP,
			Selector:  labels,
			Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
				{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP},
			},
		},
	}
	if _, err := client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("cluster DNS: creating the kube-dns service: %w", err)
	}
	return nil
}

// dnsKubeconfig returns a kubeconfig for CoreDNS: the in-cluster API
// address, the cluster CA and a token of its ServiceAccount.
func dnsKubeconfig(ctx context.Context, client kubernetes.Interface, caPEM []byte) ([]byte, error) {
	seconds := int64(dnsTokenLifetime / time.Second)
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds}}
	token, err := client.CoreV1().ServiceAccounts(metav1.NamespaceSystem).CreateToken(ctx, dnsServiceAccount, req, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("cluster DNS: requesting a token: %w", err)
	}
	conf := clientcmdapi.NewConfig()
	conf.Clusters["cluster"] = &clientcmdapi.Cluster{Server: inClusterAPIHost, CertificateAuthorityData: caPEM}
	conf.AuthInfos[dnsServiceAccount] = &clientcmdapi.AuthInfo{Token: token.Status.Token}
	conf.Contexts["default"] = &clientcmdapi.Context{Cluster: "cluster", AuthInfo: dnsServiceAccount}
	conf.CurrentContext = "default"
	data, err := clientcmd.Write(*conf)
	if err != nil {
		return nil, fmt.Errorf("cluster DNS: writing its kubeconfig: %w", err)
	}
	return data, nil
}

// dnsDeployment runs one CoreDNS. Its Corefile comes from the ConfigMap at
// /etc/coredns, its kubeconfig from the Secret at /etc/coredns/auth; it runs
// in /etc/coredns, so the Corefile names the kubeconfig relative to it. Its
// image's entrypoint, /coredns, is the cached CoreDNS that node agents
// bind-mount there.
func dnsDeployment(labels map[string]string, secret, configMap string) *appsv1.Deployment {
	replicas := int32(1)
	noToken := false
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: dnsName, Namespace: metav1.NamespaceSystem, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName:           dnsServiceAccount,
					AutomountServiceAccountToken: &noToken,
					Containers: []corev1.Container{{
						Name:       dnsName,
						Image:      "registry.k8s.io/coredns/coredns:" + controlplane.CoreDNSVersion,
						Args:       []string{"-conf", dnsConfigDir + "/Corefile"},
						WorkingDir: dnsConfigDir,
						Ports: []corev1.ContainerPort{
							{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
							{Name: "dns-tcp", ContainerPort: 53, Protocol: corev1.ProtocolTCP},
						},
						VolumeMounts: []corev1.VolumeMount{
							{Name: "config", MountPath: dnsConfigDir, ReadOnly: true},
							{Name: "auth", MountPath: dnsConfigDir + "/auth", ReadOnly: true},
						},
					}},
					Volumes: []corev1.Volume{
						{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: configMap}}}},
						{Name: "auth", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret}}},
					},
				},
			},
		},
	}
}

// waitDNS waits until the cluster DNS answers from inside every node's
// namespace: a query to the kube-dns ClusterIP goes through the node's
// kube-proxy to CoreDNS, which must know the kubernetes Service, so this
// checks every kube-proxy and CoreDNS's view of the API at once.
func waitDNS(ctx context.Context, nodes []topology.Node) error {
	ctx, cancel := context.WithTimeout(ctx, dnsReadyTimeout)
	defer cancel()
	const name = "kubernetes.default.svc." + ClusterDomain + "."
	for _, node := range nodes {
		dial := kubeclient.NetnsDialer(netns.Path(node.Netns))
		resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dial(ctx, network, net.JoinHostPort(ClusterDNSIP, "53"))
		}}
		var lastErr error
		for {
			attempt, cancelAttempt := context.WithTimeout(ctx, time.Second)
			addrs, err := resolver.LookupHost(attempt, name)
			cancelAttempt()
			if err == nil && len(addrs) > 0 {
				break
			}
			lastErr = err
			select {
			case <-ctx.Done():
				return fmt.Errorf("the cluster DNS (%s) does not answer from %s: %w (last error: %v)",
					ClusterDNSIP, node.Name, context.Cause(ctx), lastErr)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}
