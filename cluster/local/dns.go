package local

import (
	"context"
	"fmt"
	"net"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

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
	dnsReadyTimeout   = 60 * time.Second
	dnsServiceAccount = "coredns"
)

// corefile serves the cluster domain and the reverse zones from the API,
// which CoreDNS reaches as an in-cluster client: the kubernetes Service
// from its environment, its ServiceAccount's projected token and CA.
const corefile = `.:53 {
    errors
    ready
    kubernetes ` + ClusterDomain + ` in-addr.arpa ip6.arpa {
        pods insecure
        ttl 5
    }
}
`

// installDNS creates CoreDNS with its ServiceAccount and role,
// configuration, Deployment and Service. CoreDNS reaches the API server as
// in a real cluster, at the kubernetes Service, with the token the node
// agent projects for its ServiceAccount.
func installDNS(ctx context.Context, client kubernetes.Interface) error {
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
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: dnsName, Namespace: ns}, Data: map[string]string{"Corefile": corefile}}
	if _, err := client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("cluster DNS: creating its configuration: %w", err)
	}
	if _, err := client.AppsV1().Deployments(ns).Create(ctx, dnsDeployment(labels, cm.Name), metav1.CreateOptions{}); err != nil {
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

// dnsDeployment runs one CoreDNS, as upstream deploys it: its Corefile
// from the ConfigMap at /etc/coredns, its API credentials from the
// ServiceAccount volume that admission adds. Its image's entrypoint,
// /coredns, is the cached CoreDNS that node agents bind-mount there.
func dnsDeployment(labels map[string]string, configMap string) *appsv1.Deployment {
	replicas := int32(1)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: dnsName, Namespace: metav1.NamespaceSystem, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName: dnsServiceAccount,
					Containers: []corev1.Container{{
						Name:  dnsName,
						Image: "registry.k8s.io/coredns/coredns:" + controlplane.CoreDNSVersion,
						Args:  []string{"-conf", dnsConfigDir + "/Corefile"},
						Ports: []corev1.ContainerPort{
							{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
							{Name: "dns-tcp", ContainerPort: 53, Protocol: corev1.ProtocolTCP},
						},
						VolumeMounts: []corev1.VolumeMount{
							{Name: "config", MountPath: dnsConfigDir, ReadOnly: true},
						},
					}},
					Volumes: []corev1.Volume{
						{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: configMap}}}},
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
