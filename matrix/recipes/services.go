package recipes

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/netpolcheck/netpolcheck/matrix"
)

// Service is a Service a recipe's document creates (kubectl run --expose,
// kubectl expose, kubectl create service).
type Service struct {
	Namespace, Name string
	// Type is ClusterIP (when empty) or NodePort.
	Type     corev1.ServiceType
	Selector map[string]string
	Ports    []corev1.ServicePort
	// Doc is the document's command that creates it.
	Doc string
}

// Key returns "namespace/name".
func (s Service) Key() string { return s.Namespace + "/" + s.Name }

// Object returns the Service as an API object in namespace.
func (s Service) Object(namespace string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: namespace},
		Spec:       corev1.ServiceSpec{Type: s.Type, Selector: s.Selector, Ports: s.Ports},
	}
}

// Port returns the Service port with the given number and protocol.
func (s Service) Port(port int32, protocol corev1.Protocol) (corev1.ServicePort, bool) {
	for _, p := range s.Ports {
		if p.Port == port && protocolOrTCP(p.Protocol) == protocolOrTCP(protocol) {
			return p, true
		}
	}
	return corev1.ServicePort{}, false
}

// Access is how a client addresses a Service.
type Access string

// The ways the documents reach a Service.
const (
	// ByName is the Service's DNS name as the documents write it: `web`
	// from the Service's namespace, `web.<namespace>` from any other,
	// resolved through the cluster DNS.
	ByName Access = "name"
	// ByClusterIP is the Service's ClusterIP.
	ByClusterIP Access = "clusterIP"
	// ByNodePort is a node's address and the Service's node port, from a
	// host outside the cluster.
	ByNodePort Access = "nodePort"
	// Lookup only resolves the Service's name (as ByName writes it): the
	// outcome states whether the name resolves, and its To and Port are a
	// DNS server pod and 53/UDP.
	Lookup Access = "lookup"
)

// Via says how a stated outcome reaches its destination when the document
// goes through a Service. Policies apply after service translation: the
// outcome's To and Port are the backend pod and the pod port the Service
// targets, and the verdict is the engine's for that cell (and, by name, the
// lookup's too).
type Via struct {
	// Service is one of the recipe's Services, "namespace/name".
	Service string
	// Port is the Service port the client connects to (not for Lookup).
	Port int32
	By   Access
}

// DNSName returns the name a client in namespace uses for the Service
// "namespace/name" (as the documents write it).
func DNSName(service, namespace string) string {
	ns, name, _ := strings.Cut(service, "/")
	if ns == namespace {
		return name
	}
	return name + "." + ns
}

// Resolves reports whether the engine lets from reach one of the DNS
// servers (endpoint names) on UDP 53, the port a resolver uses. With no DNS
// server in the model, names are taken to resolve.
func Resolves(e *matrix.Engine, from string, dnsServers []string) (bool, error) {
	if len(dnsServers) == 0 {
		return true, nil
	}
	for _, server := range dnsServers {
		x, err := e.Explain(from, server, matrix.PortProtocol{Port: 53, Protocol: corev1.ProtocolUDP})
		if err != nil {
			return false, err
		}
		if x.Allowed {
			return true, nil
		}
	}
	return false, nil
}

// Expected returns the engine's verdict for the outcome: the cell From ->
// To on its port, and for an outcome reached by a Service name also the
// lookup (see Resolves); a Lookup outcome is the lookup alone.
func (o Outcome) Expected(e *matrix.Engine, dnsServers []string) (bool, error) {
	if o.Via != nil && (o.Via.By == Lookup || o.Via.By == ByName) {
		resolves, err := Resolves(e, o.From, dnsServers)
		if err != nil || o.Via.By == Lookup || !resolves {
			return resolves, err
		}
	}
	x, err := e.Explain(o.From, o.To, o.PortProtocol())
	if err != nil {
		return false, err
	}
	return x.Allowed, nil
}

// DNSServers returns the recipe's stand-ins for the cluster DNS: its pods
// labelled k8s-app=kube-dns.
func (r *Recipe) DNSServers() []string {
	var out []string
	for _, p := range r.Pods {
		if p.Labels["k8s-app"] == "kube-dns" {
			out = append(out, matrix.PodName(p.Namespace, p.Name))
		}
	}
	return out
}

// CheckVia verifies that an outcome's Via is consistent with the recipe:
// the Service exists; a connection's Service port targets the outcome's pod
// port and its selector picks the outcome's destination; a NodePort is
// reached from an external host; a lookup names a DNS server.
func (r *Recipe) CheckVia(o Outcome) error {
	v := o.Via
	i := slices.IndexFunc(r.Services, func(s Service) bool { return s.Key() == v.Service })
	if i < 0 {
		return fmt.Errorf("%s: no Service %s in the recipe", o, v.Service)
	}
	svc := r.Services[i]
	if v.By == Lookup {
		if !slices.Contains(r.DNSServers(), o.To) {
			return fmt.Errorf("%s: a lookup's destination must be a DNS server (%v)", o, r.DNSServers())
		}
		return nil
	}
	port, ok := svc.Port(v.Port, o.Protocol)
	if !ok {
		return fmt.Errorf("%s: Service %s has no port %d/%s", o, v.Service, v.Port, protocolOrTCP(o.Protocol))
	}
	if target := port.TargetPort; target.Type != intstr.Int || target.IntVal != o.Port {
		return fmt.Errorf("%s: port %d of Service %s targets %s, not %d", o, v.Port, v.Service, target.String(), o.Port)
	}
	ns, name, _ := strings.Cut(o.To, "/")
	pi := slices.IndexFunc(r.Pods, func(p matrix.Pod) bool { return p.Namespace == ns && p.Name == name })
	if ns != svc.Namespace || pi < 0 || !labels.SelectorFromSet(svc.Selector).Matches(labels.Set(r.Pods[pi].Labels)) {
		return fmt.Errorf("%s: Service %s does not select %s", o, v.Service, o.To)
	}
	if v.By == ByNodePort && (svc.Type != corev1.ServiceTypeNodePort || strings.Contains(o.From, "/")) {
		return fmt.Errorf("%s: a NodePort outcome needs a NodePort Service and an external client", o)
	}
	return nil
}

func protocolOrTCP(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

// exposed returns the Service `kubectl run NAME --labels L --expose
// --port P` (or `kubectl expose pod/NAME`) creates: the pod's labels as the
// selector, port P targeting P.
func exposed(namespace, name, selector string, port int32, typ corev1.ServiceType, doc string) Service {
	return Service{Namespace: namespace, Name: name, Type: typ, Selector: parseLabels(selector), Doc: doc,
		Ports: []corev1.ServicePort{{Port: port, TargetPort: intstr.FromInt32(port), Protocol: corev1.ProtocolTCP}}}
}

// through marks an outcome as reached through a Service.
func (o Outcome) through(service string, port int32, by Access) Outcome {
	o.Via = &Via{Service: service, Port: port, By: by}
	return o
}
