package matrix

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Model is the cluster as the engine sees it: namespaces with labels, pods with
// labels, IPs and declared container ports, and external hosts outside the
// cluster. It is plain data, loaded from a model file or built from a cluster.
type Model struct {
	Namespaces []Namespace `json:"namespaces"`
	Pods       []Pod       `json:"pods"`
	Externals  []External  `json:"externals,omitempty"`
}

// Namespace is a namespace and its labels.
type Namespace struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

// Pod is a pod: where it lives, its labels, its IPs (the first one is the
// primary) and the ports its containers and sidecars declare. A host-network
// pod (HostNetwork) has its node's addresses and stands for that node: no
// policy selects it, and selector peers never match it.
type Pod struct {
	Namespace   string            `json:"namespace"`
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels,omitempty"`
	IPs         []string          `json:"ips,omitempty"`
	Node        string            `json:"node,omitempty"`
	HostNetwork bool              `json:"hostNetwork,omitempty"`
	Containers  []Container       `json:"containers,omitempty"`
	// Sidecars are the pod's restartable init containers (see IsSidecar):
	// they serve for the pod's whole life, and named ports resolve against
	// their ports as against the containers'.
	Sidecars []Container `json:"sidecars,omitempty"`
}

// IsSidecar reports whether an init container is a sidecar: with
// restartPolicy Always it runs for the pod's whole life, so its ports count
// like those of the pod's containers, for named ports in policies too.
func IsSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// serving returns the sidecars and then the containers of a pod: everything
// that serves ports.
func (p Pod) serving() []Container {
	return append(append(make([]Container, 0, len(p.Sidecars)+len(p.Containers)), p.Sidecars...), p.Containers...)
}

// Container is a container of a pod with its declared ports.
type Container struct {
	Name  string          `json:"name"`
	Ports []ContainerPort `json:"ports,omitempty"`
}

// ContainerPort mirrors the Kubernetes container port: an optional name (for
// named ports in policies), a number and a protocol (TCP when empty).
type ContainerPort struct {
	Name          string          `json:"name,omitempty"`
	ContainerPort int32           `json:"containerPort"`
	Protocol      corev1.Protocol `json:"protocol,omitempty"`
}

// External is a host outside the cluster, addressed by IP only; policies can
// only reach it through ipBlock peers.
type External struct {
	Name  string          `json:"name"`
	IPs   []string        `json:"ips"`
	Ports []ContainerPort `json:"ports,omitempty"`
}

// PortProtocol is one column group of a truth table: a destination port number
// and its protocol.
type PortProtocol struct {
	Port     int32           `json:"port"`
	Protocol corev1.Protocol `json:"protocol"`
}

func (p PortProtocol) String() string { return fmt.Sprintf("%d/%s", p.Port, p.Protocol) }

// Endpoint is anything that can send or receive a probe: a pod or an external
// host, with its addresses and the ports it serves.
type Endpoint struct {
	// Name is "namespace/pod" for a pod and the host's name for an external.
	Name      string
	Namespace string
	Pod       string
	External  bool
	// HostNetwork marks a host-network pod: it has its node's addresses.
	HostNetwork bool
	Node        string
	IPs         []netip.Addr
	Labels      map[string]string
	// Ports are the ports the endpoint serves, with the container serving each.
	Ports []ServedPort
}

// ServedPort is a port an endpoint serves and the container that serves it.
type ServedPort struct {
	Container string
	ContainerPort
}

// Policed reports whether policies can select the endpoint, and selector
// peers match it: a pod, not an external host nor a host-network pod.
func (e Endpoint) Policed() bool { return !e.External && !e.HostNetwork }

// PodName returns the endpoint name of a pod.
func PodName(namespace, pod string) string { return namespace + "/" + pod }

// Serves reports whether the endpoint serves the port/protocol.
func (e Endpoint) Serves(pp PortProtocol) bool {
	for _, p := range e.Ports {
		if p.ContainerPort.ContainerPort == pp.Port && protocolOrTCP(p.Protocol) == pp.Protocol {
			return true
		}
	}
	return false
}

// IPFor returns the endpoint's address in the same family as peer, if any.
func (e Endpoint) IPFor(peer netip.Addr) (netip.Addr, bool) {
	for _, ip := range e.IPs {
		if ip.Is4() == peer.Is4() {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// PrimaryIP returns the endpoint's first address, if it has one.
func (e Endpoint) PrimaryIP() (netip.Addr, bool) {
	if len(e.IPs) == 0 {
		return netip.Addr{}, false
	}
	return e.IPs[0], true
}

func protocolOrTCP(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

// Validate checks the model: unique names, known namespaces, parseable IPs,
// valid ports and protocols. Errors carry the field path.
func (m *Model) Validate() field.ErrorList {
	var errs field.ErrorList
	namespaces := map[string]bool{}
	for i, ns := range m.Namespaces {
		path := field.NewPath("namespaces").Index(i)
		switch {
		case ns.Name == "":
			errs = append(errs, field.Required(path.Child("name"), "a namespace needs a name"))
		case namespaces[ns.Name]:
			errs = append(errs, field.Duplicate(path.Child("name"), ns.Name))
		}
		namespaces[ns.Name] = true
	}
	names := map[string]bool{}
	for i, pod := range m.Pods {
		path := field.NewPath("pods").Index(i)
		if pod.Name == "" {
			errs = append(errs, field.Required(path.Child("name"), "a pod needs a name"))
		}
		if !namespaces[pod.Namespace] {
			errs = append(errs, field.NotFound(path.Child("namespace"), pod.Namespace))
		}
		name := PodName(pod.Namespace, pod.Name)
		if names[name] {
			errs = append(errs, field.Duplicate(path.Child("name"), name))
		}
		names[name] = true
		if len(pod.IPs) == 0 {
			errs = append(errs, field.Required(path.Child("ips"), "a pod needs an IP to be probed"))
		}
		errs = append(errs, validateIPs(path.Child("ips"), pod.IPs)...)
		portNames := map[string]bool{}
		for j, c := range pod.serving() {
			cpath := path.Child("sidecars").Index(j)
			if j >= len(pod.Sidecars) {
				cpath = path.Child("containers").Index(j - len(pod.Sidecars))
			}
			if c.Name == "" {
				errs = append(errs, field.Required(cpath.Child("name"), "a container needs a name"))
			}
			errs = append(errs, validatePorts(cpath.Child("ports"), c.Ports)...)
			for k, p := range c.Ports {
				if p.Name == "" {
					continue
				}
				if portNames[p.Name] {
					errs = append(errs, field.Duplicate(cpath.Child("ports").Index(k).Child("name"), p.Name))
				}
				portNames[p.Name] = true
			}
		}
	}
	for i, ext := range m.Externals {
		path := field.NewPath("externals").Index(i)
		switch {
		case ext.Name == "":
			errs = append(errs, field.Required(path.Child("name"), "an external host needs a name"))
		case strings.Contains(ext.Name, "/"):
			errs = append(errs, field.Invalid(path.Child("name"), ext.Name, "must not contain '/', which separates namespace and pod"))
		case names[ext.Name]:
			errs = append(errs, field.Duplicate(path.Child("name"), ext.Name))
		}
		names[ext.Name] = true
		if len(ext.IPs) == 0 {
			errs = append(errs, field.Required(path.Child("ips"), "an external host is addressed by IP"))
		}
		errs = append(errs, validateIPs(path.Child("ips"), ext.IPs)...)
		errs = append(errs, validatePorts(path.Child("ports"), ext.Ports)...)
	}
	return errs
}

func validateIPs(path *field.Path, ips []string) field.ErrorList {
	var errs field.ErrorList
	for i, s := range ips {
		if _, err := netip.ParseAddr(s); err != nil {
			errs = append(errs, field.Invalid(path.Index(i), s, "not an IP address"))
		}
	}
	return errs
}

func validatePorts(path *field.Path, ports []ContainerPort) field.ErrorList {
	var errs field.ErrorList
	for i, p := range ports {
		ppath := path.Index(i)
		if p.ContainerPort < 1 || p.ContainerPort > 65535 {
			errs = append(errs, field.Invalid(ppath.Child("containerPort"), p.ContainerPort, "must be between 1 and 65535"))
		}
		switch protocolOrTCP(p.Protocol) {
		case corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
		default:
			errs = append(errs, field.NotSupported(ppath.Child("protocol"), p.Protocol, []string{"TCP", "UDP", "SCTP"}))
		}
	}
	return errs
}

// Endpoints returns every pod and external host of a valid model as endpoints,
// pods first in model order, then externals. Call Validate first: addresses
// that do not parse are skipped here.
func (m *Model) Endpoints() []Endpoint {
	nsLabels := map[string]map[string]string{}
	for _, ns := range m.Namespaces {
		nsLabels[ns.Name] = ns.Labels
	}
	out := make([]Endpoint, 0, len(m.Pods)+len(m.Externals))
	for _, pod := range m.Pods {
		ep := Endpoint{
			Name:        PodName(pod.Namespace, pod.Name),
			Namespace:   pod.Namespace,
			Pod:         pod.Name,
			Node:        pod.Node,
			HostNetwork: pod.HostNetwork,
			IPs:         parseIPs(pod.IPs),
			Labels:      pod.Labels,
		}
		for _, c := range pod.serving() {
			for _, p := range c.Ports {
				p.Protocol = protocolOrTCP(p.Protocol)
				ep.Ports = append(ep.Ports, ServedPort{Container: c.Name, ContainerPort: p})
			}
		}
		out = append(out, ep)
	}
	for _, ext := range m.Externals {
		ep := Endpoint{Name: ext.Name, External: true, IPs: parseIPs(ext.IPs)}
		for _, p := range ext.Ports {
			p.Protocol = protocolOrTCP(p.Protocol)
			ep.Ports = append(ep.Ports, ServedPort{Container: ext.Name, ContainerPort: p})
		}
		out = append(out, ep)
	}
	return out
}

// PortProtocols returns every port/protocol served by any endpoint, sorted by
// protocol then port.
func PortProtocols(endpoints []Endpoint) []PortProtocol {
	seen := map[PortProtocol]bool{}
	var out []PortProtocol
	for _, ep := range endpoints {
		for _, p := range ep.Ports {
			pp := PortProtocol{Port: p.ContainerPort.ContainerPort, Protocol: p.Protocol}
			if !seen[pp] {
				seen[pp] = true
				out = append(out, pp)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Protocol != out[j].Protocol {
			return protocolRank(out[i].Protocol) < protocolRank(out[j].Protocol)
		}
		return out[i].Port < out[j].Port
	})
	return out
}

func protocolRank(p corev1.Protocol) int {
	switch p {
	case corev1.ProtocolTCP:
		return 0
	case corev1.ProtocolUDP:
		return 1
	case corev1.ProtocolSCTP:
		return 2
	}
	return 3
}

func parseIPs(ips []string) []netip.Addr {
	out := make([]netip.Addr, 0, len(ips))
	for _, s := range ips {
		if ip, err := netip.ParseAddr(s); err == nil {
			out = append(out, ip.Unmap())
		}
	}
	return out
}
