package nodeagent

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestResolvConf(t *testing.T) {
	two := "2"
	tests := []struct {
		name        string
		spec        corev1.PodSpec
		clusterDNS  string
		want        string
		wantMachine bool
	}{
		{name: "cluster first", clusterDNS: "10.96.0.10",
			want: "search ns.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"},
		{name: "no cluster DNS", wantMachine: true},
		{name: "host network keeps the machine's", spec: corev1.PodSpec{HostNetwork: true}, clusterDNS: "10.96.0.10", wantMachine: true},
		{name: "cluster first with host net", spec: corev1.PodSpec{HostNetwork: true, DNSPolicy: corev1.DNSClusterFirstWithHostNet}, clusterDNS: "10.96.0.10",
			want: "search ns.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"},
		{name: "default", spec: corev1.PodSpec{DNSPolicy: corev1.DNSDefault}, clusterDNS: "10.96.0.10", wantMachine: true},
		{name: "none with dnsConfig", spec: corev1.PodSpec{DNSPolicy: corev1.DNSNone, DNSConfig: &corev1.PodDNSConfig{
			Nameservers: []string{"1.2.3.4"}, Searches: []string{"example"}, Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &two}, {Name: "edns0"}}}},
			clusterDNS: "10.96.0.10", want: "search example\nnameserver 1.2.3.4\noptions ndots:2 edns0\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Spec: tt.spec}
			got, ok := resolvConf(pod, tt.clusterDNS, "cluster.local")
			if ok == tt.wantMachine || got != tt.want {
				t.Errorf("resolvConf = %q, %v; want %q, %v", got, ok, tt.want, !tt.wantMachine)
			}
		})
	}
}

func TestHostsFile(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "ns"},
		Spec:       corev1.PodSpec{Subdomain: "web", HostAliases: []corev1.HostAlias{{IP: "10.1.1.1", Hostnames: []string{"a", "b"}}}},
		Status:     corev1.PodStatus{PodIPs: []corev1.PodIP{{IP: "10.0.0.7"}}},
	}
	want := "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"10.0.0.7\tweb-0.web.ns.svc.cluster.local\tweb-0\n10.1.1.1\ta\tb\n"
	if got := hostsFile(pod, "cluster.local"); got != want {
		t.Errorf("hostsFile =\n%s\nwant\n%s", got, want)
	}
}
