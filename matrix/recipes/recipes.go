// Package recipes holds every NetworkPolicy scenario of the seed documents
// (../shared/seeds) as data: the namespaces and pods each one needs, its steps
// (policies applied or deleted in order) and the outcome the document states
// for each step. Where a document is wrong, the recipe asserts the API's real
// behaviour and its Correction says so.
//
// The package is pure: the engine's tests run every recipe offline, and the
// suites deploy the same recipes into a cluster.
package recipes

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/matrix/manifest"
)

// Recipe is one scenario of a seed document.
type Recipe struct {
	// ID is unique and stable, such as "seed004/5.7".
	ID    string
	Title string
	// Source names the document and section.
	Source     string
	Namespaces []matrix.Namespace
	// Pods have no IPs: a cluster assigns them (Model assigns offline ones).
	Pods      []matrix.Pod
	Externals []matrix.External
	// Services are the Services the document creates; outcomes reach them
	// through their Via.
	Services []Service
	Steps    []Step
	// Labels are feature labels (Egress, IPBlock, ...), besides "Recipe".
	Labels []string
}

// Step changes the policies in force, then states outcomes.
type Step struct {
	Name string
	// Apply holds NetworkPolicy manifests (multi-document YAML), applied in order;
	// a policy with the name of an existing one replaces it.
	Apply string
	// Delete lists policies ("namespace/name") deleted before Apply.
	Delete []string
	// Rejected, when set, says Apply must be rejected with an error containing it,
	// and nothing must change.
	Rejected string
	Expect   []Outcome
	// Correction explains where the step asserts something other than the document says.
	Correction string
}

// Outcome is a connection the document says is allowed or not.
type Outcome struct {
	From, To string
	Port     int32
	Protocol corev1.Protocol
	Allowed  bool
	// Doc quotes or paraphrases what the document says.
	Doc string
	// Via, when set, says the document reaches To through a Service (by
	// name, ClusterIP or NodePort) or only resolves its name; To and Port
	// stay the backend pod and its port, where policies apply.
	Via *Via
}

// PortProtocol returns the outcome's port and protocol (TCP when unset).
func (o Outcome) PortProtocol() matrix.PortProtocol {
	p := o.Protocol
	if p == "" {
		p = corev1.ProtocolTCP
	}
	return matrix.PortProtocol{Port: o.Port, Protocol: p}
}

func (o Outcome) String() string {
	verdict := "denied"
	if o.Allowed {
		verdict = "allowed"
	}
	s := fmt.Sprintf("%s -> %s %s %s", o.From, o.To, o.PortProtocol(), verdict)
	if o.Via != nil {
		s += fmt.Sprintf(" (via %s %s port %d)", o.Via.Service, o.Via.By, o.Via.Port)
	}
	return s
}

// Model returns the recipe's model with offline pod IPs: 10.244.<n>.<m> for
// the m-th pod (from 10) of the n-th namespace (from 1).
func (r *Recipe) Model() *matrix.Model {
	m := &matrix.Model{Namespaces: r.Namespaces, Externals: r.Externals}
	nsIndex := map[string]int{}
	for i, ns := range r.Namespaces {
		nsIndex[ns.Name] = i + 1
	}
	count := map[string]int{}
	for _, p := range r.Pods {
		p.IPs = []string{fmt.Sprintf("10.244.%d.%d", nsIndex[p.Namespace], 10+count[p.Namespace])}
		count[p.Namespace]++
		m.Pods = append(m.Pods, p)
	}
	return m
}

// All returns every recipe of the four seed documents, in document order.
func All() []Recipe {
	var out []Recipe
	out = append(out, seed001()...)
	out = append(out, seed002()...)
	out = append(out, seed003()...)
	out = append(out, seed004()...)
	return out
}

// pod builds a pod with one container serving the given ports, written
// "80" (TCP), "53/UDP" or "http=80/TCP" (named). Labels are "k=v" pairs.
func pod(namespace, name, container, labels string, ports ...string) matrix.Pod {
	p := matrix.Pod{Namespace: namespace, Name: name, Labels: parseLabels(labels)}
	c := matrix.Container{Name: container}
	for _, spec := range ports {
		c.Ports = append(c.Ports, parsePort(spec))
	}
	p.Containers = []matrix.Container{c}
	return p
}

func external(name, ip string, ports ...string) matrix.External {
	e := matrix.External{Name: name, IPs: []string{ip}}
	for _, spec := range ports {
		e.Ports = append(e.Ports, parsePort(spec))
	}
	return e
}

func namespace(name, labels string) matrix.Namespace {
	return matrix.Namespace{Name: name, Labels: parseLabels(labels)}
}

func parseLabels(s string) map[string]string {
	if s == "" {
		return nil
	}
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = v
	}
	return out
}

func parsePort(spec string) matrix.ContainerPort {
	var p matrix.ContainerPort
	if name, rest, ok := strings.Cut(spec, "="); ok {
		p.Name, spec = name, rest
	}
	num, proto, ok := strings.Cut(spec, "/")
	if !ok {
		proto = "TCP"
	}
	var n int32
	fmt.Sscanf(num, "%d", &n)
	p.ContainerPort, p.Protocol = n, corev1.Protocol(proto)
	return p
}

// allow and deny build outcomes over TCP unless the port says "53/UDP".
func allow(from, to, port, doc string) Outcome { return outcome(from, to, port, true, doc) }
func deny(from, to, port, doc string) Outcome  { return outcome(from, to, port, false, doc) }

func outcome(from, to, port string, allowed bool, doc string) Outcome {
	p := parsePort(port)
	return Outcome{From: from, To: to, Port: p.ContainerPort, Protocol: p.Protocol, Allowed: allowed, Doc: doc}
}

// Manifests parses the step's Apply manifests, defaulting the namespace to
// "default" as kubectl does without -n. A step with Rejected set must fail
// here or in the API server.
func (s Step) Manifests() ([]*networkingv1.NetworkPolicy, error) {
	if strings.TrimSpace(s.Apply) == "" {
		return nil, nil
	}
	ps, err := manifest.ParsePolicies(fmt.Sprintf("step %q", s.Name), []byte(s.Apply), "default")
	if err != nil {
		return nil, err
	}
	return ps.Items, nil
}

// Policies returns the policies in force after the step, given those in
// force before it: deletions first, then the step's manifests, replacing
// policies of the same name. It is sorted by namespace/name.
func (s Step) Policies(before []*networkingv1.NetworkPolicy) ([]*networkingv1.NetworkPolicy, error) {
	byName := map[string]*networkingv1.NetworkPolicy{}
	for _, np := range before {
		byName[np.Namespace+"/"+np.Name] = np
	}
	for _, name := range s.Delete {
		if _, ok := byName[name]; !ok {
			return nil, fmt.Errorf("step %q deletes %s, which is not in force", s.Name, name)
		}
		delete(byName, name)
	}
	applied, err := s.Manifests()
	if err != nil {
		return nil, err
	}
	for _, np := range applied {
		byName[np.Namespace+"/"+np.Name] = np
	}
	out := make([]*networkingv1.NetworkPolicy, 0, len(byName))
	for _, np := range byName {
		out = append(out, np)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Namespace+"/"+out[i].Name < out[j].Namespace+"/"+out[j].Name
	})
	return out, nil
}
