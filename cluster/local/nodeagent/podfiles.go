package nodeagent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// podFile is a file the agent writes for a pod and mounts into each of its
// containers, as the kubelet manages /etc/resolv.conf and /etc/hosts.
type podFile struct {
	name, target string
	content      string
}

// podFiles are the pod's managed files; hostNetwork pods keep the
// machine's hosts, and resolv.conf unless their DNS policy says otherwise.
func (a *Agent) podFiles(pod *corev1.Pod) []podFile {
	var files []podFile
	if conf, ok := resolvConf(pod, a.cfg.ClusterDNS, a.cfg.ClusterDomain); ok {
		files = append(files, podFile{name: "resolv.conf", target: "/etc/resolv.conf", content: conf})
	}
	if !pod.Spec.HostNetwork {
		files = append(files, podFile{name: "hosts", target: "/etc/hosts", content: hostsFile(pod, a.cfg.ClusterDomain)})
	}
	return files
}

// writePodFiles writes the pod's managed files into dir.
func writePodFiles(dir string, files []podFile) error {
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte(f.content), 0o644); err != nil {
			return fmt.Errorf("writing the pod's %s: %w", f.target, err)
		}
	}
	return nil
}

// resolvConf is the pod's /etc/resolv.conf as the kubelet writes it: the
// cluster DNS for ClusterFirst (and ClusterFirstWithHostNet), with the
// search list NAMESPACE.svc.DOMAIN svc.DOMAIN DOMAIN and ndots:5; the
// pod's dnsConfig alone for None; merged with dnsConfig in either case. ok
// is false when the pod keeps the machine's file: policy Default, or a
// hostNetwork pod with ClusterFirst, or no cluster DNS.
func resolvConf(pod *corev1.Pod, clusterDNS, domain string) (string, bool) {
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = corev1.DNSClusterFirst
	}
	var servers, search, options []string
	switch {
	case policy == corev1.DNSNone:
	case policy == corev1.DNSClusterFirstWithHostNet || (policy == corev1.DNSClusterFirst && !pod.Spec.HostNetwork):
		if clusterDNS == "" {
			return "", false
		}
		servers = []string{clusterDNS}
		search = []string{pod.Namespace + ".svc." + domain, "svc." + domain, domain}
		options = []string{"ndots:5"}
	default:
		return "", false
	}
	if c := pod.Spec.DNSConfig; c != nil {
		servers = append(servers, c.Nameservers...)
		search = append(search, c.Searches...)
		for _, o := range c.Options {
			opt := o.Name
			if o.Value != nil {
				opt += ":" + *o.Value
			}
			options = append(options, opt)
		}
	}
	var b strings.Builder
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	return b.String(), true
}

// podHostname is the pod's hostname: spec.hostname, else its name.
func podHostname(pod *corev1.Pod) string {
	if pod.Spec.Hostname != "" {
		return pod.Spec.Hostname
	}
	return pod.Name
}

// hostsFile is the kubelet's /etc/hosts of a pod: loopback, then the pod's
// IPs with its hostname (and FQDN with a subdomain), then hostAliases.
func hostsFile(pod *corev1.Pod, domain string) string {
	var b strings.Builder
	b.WriteString("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	names := podHostname(pod)
	if pod.Spec.Subdomain != "" {
		names = fmt.Sprintf("%s.%s.%s.svc.%s\t%s", podHostname(pod), pod.Spec.Subdomain, pod.Namespace, domain, podHostname(pod))
	}
	for _, ip := range pod.Status.PodIPs {
		fmt.Fprintf(&b, "%s\t%s\n", ip.IP, names)
	}
	for _, alias := range pod.Spec.HostAliases {
		fmt.Fprintf(&b, "%s\t%s\n", alias.IP, strings.Join(alias.Hostnames, "\t"))
	}
	return b.String()
}
