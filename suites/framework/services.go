package framework

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified
	. "github.com/onsi/gomega"    //nolint:revive // as does Gomega's

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/netpolcheck/netpolcheck/cluster/observe"
	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/matrix/recipes"
	"github.com/netpolcheck/netpolcheck/reports"
)

// Outcomes that go through a Service (Outcome.Via) are probed the way the
// documents reach them, after the step's pod matrix: by the Service's DNS
// name from the source pod (through the cluster DNS), by its ClusterIP, or
// from an external host at every node's address and the Service's node
// port. Policies apply after service translation, so the expected verdict is
// the engine's for the backend pod and the port the Service targets; by
// name, the source must also reach a cluster DNS server (the kube-system
// pods labelled k8s-app=kube-dns, which the engine then models, with
// kube-system's policies) on UDP 53.
//
// What a backend sees of a NodePort client is implementation-defined: with
// externalTrafficPolicy Cluster (kubectl expose's default, used here)
// kube-proxy masquerades the connection to the address of the node that
// forwards it. The engine's verdict for the external host holds when the
// policy admits every source, as seed 004's 5.8 does; policies that admit
// some external addresses only may see a node's address instead.

// clusterDNSLabel selects the cluster DNS server pods in kube-system.
const clusterDNSLabel = "k8s-app=kube-dns"

// createServices creates the scenario's Services in its namespaces and
// waits until their endpoints list every ready pod they select.
func (r *run) createServices(ctx context.Context) {
	for _, svc := range r.s.Services {
		ns := r.names.Namespace(svc.Namespace)
		_, err := r.env.Client.CoreV1().Services(ns).Create(ctx, svc.Object(ns), metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "creating Service %s/%s (%s)", ns, svc.Name, svc.Doc)
	}
	for _, svc := range r.s.Services {
		ns := r.names.Namespace(svc.Namespace)
		Eventually(ctx, func() error { return r.endpointsReady(ctx, ns, svc) }).WithTimeout(podReadyTimeout).
			WithPolling(200*time.Millisecond).Should(Succeed(), "the endpoints of Service %s/%s", ns, svc.Name)
	}
}

// endpointsReady says whether the Service's EndpointSlices hold a ready
// endpoint for every ready pod its selector picks.
func (r *run) endpointsReady(ctx context.Context, ns string, svc recipes.Service) error {
	pods, err := r.env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(svc.Selector).String()})
	if err != nil {
		return err
	}
	endpoints, err := r.env.Client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc.Name})
	if err != nil {
		return err
	}
	ready := map[string]bool{}
	for _, s := range endpoints.Items {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && *e.Conditions.Ready {
				for _, a := range e.Addresses {
					ready[a] = true
				}
			}
		}
	}
	for _, p := range pods.Items {
		if podReady(&p) && !ready[p.Status.PodIP] {
			return fmt.Errorf("pod %s (%s) is not a ready endpoint yet", p.Name, p.Status.PodIP)
		}
	}
	return nil
}

// viaCheck is one outcome through a Service: its probes (one per node for
// a NodePort) and the engine's verdict.
type viaCheck struct {
	outcome Outcome
	// stated is the outcome in this run's names.
	stated   recipes.Outcome
	source   matrix.Endpoint
	probes   []matrix.Probe
	expected bool
	last     []matrix.Result
	rounds   int
	// confirm: the check agreed after disagreeing and needs one more
	// agreeing round, as the matrix runner's cells do.
	confirm bool
}

// checkViaOutcomes probes the step's outcomes that go through a Service
// until they agree with the engine or the convergence deadline passes.
func (r *run) checkViaOutcomes(ctx context.Context, step *Step, model *matrix.Model, policies []*networkingv1.NetworkPolicy, uids map[string]string) {
	var checks []*viaCheck
	var engine *matrix.Engine
	var dnsServers []string
	for _, o := range step.Expect {
		if o.Via == nil {
			continue
		}
		if engine == nil {
			engine, dnsServers = r.engineWithDNS(ctx, model, policies)
		}
		if c := r.viaCheck(ctx, o, engine, dnsServers); c != nil {
			checks = append(checks, c)
		}
	}
	if len(checks) == 0 {
		return
	}
	tr, sources := r.env.attachment.ProbeTransport(r.env.Client, uids)
	timeout := r.env.ProbeTimeout
	deadline := time.Now().Add(max(r.env.Convergence, timeout))
	pending := checks
	for round := 1; len(pending) > 0; round++ {
		started := time.Now()
		// Every check of a round runs at once: denials cost one timeout.
		var wg sync.WaitGroup
		errs := make([]error, len(pending))
		for i, c := range pending {
			if sources != nil && !sources(c.source) {
				GinkgoWriter.Printf("outcome %s -> %s via %s not probed here (%s)\n", c.outcome.From, c.outcome.To, c.outcome.Via.By, r.env.Provider)
				continue
			}
			for i := range c.probes {
				c.probes[i].TimeoutMillis = timeout.Milliseconds()
			}
			c.rounds++
			wg.Go(func() { c.last, errs[i] = tr.RunBatch(ctx, c.source, c.probes) })
		}
		wg.Wait()
		Expect(errors.Join(errs...)).NotTo(HaveOccurred(), "probing through Services")
		var again []*viaCheck
		for _, c := range pending {
			if c.last != nil && !c.settled() {
				again = append(again, c)
			}
		}
		pending = again
		if len(pending) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(max(0, 250*time.Millisecond-time.Since(started)))
	}
	recorded := &r.rec.Steps[len(r.rec.Steps)-1]
	for _, c := range checks {
		GinkgoWriter.Printf("via %s %s: %s -> %s: expected %v, observed %s\n", c.outcome.Via.Service, c.outcome.Via.By,
			c.outcome.From, c.outcome.To, c.expected, describeResults(c.probes, c.last))
		if c.last != nil {
			recorded.Services = append(recorded.Services, c.record())
		}
	}
	// At the deadline a check whose last round agreed, without a second
	// agreement yet, passes, as a matrix cell does.
	pending = slices.DeleteFunc(pending, (*viaCheck).agrees)
	if len(pending) > 0 {
		var b strings.Builder
		for _, c := range pending {
			fmt.Fprintf(&b, "%s -> %s %s via %s %s port %d (%s): expected %s, observed %s\n", c.outcome.From, c.outcome.To, c.outcome.Port,
				c.outcome.Via.Service, c.outcome.Via.By, c.outcome.Via.Port, c.outcome.Doc, verdictWord(c.expected), describeResults(c.probes, c.last))
		}
		Fail(fmt.Sprintf("step %q: outcomes through Services disagree with the NetworkPolicy API:\n%s", step.Name, b.String()))
	}
}

// record is the check as results.json holds it, with the run's names.
func (c *viaCheck) record() reports.ServiceCheck {
	o := c.stated
	return reports.ServiceCheck{
		From: o.From, To: o.To, Port: o.Port, Protocol: string(o.Protocol),
		Service: o.Via.Service, By: string(o.Via.By), ServicePort: o.Via.Port,
		Expected: c.expected, Observed: describeResults(c.probes, c.last), Rounds: c.rounds, Agrees: c.agrees(),
	}
}

// settled records the round just probed and reports whether the check
// needs no more probing: it agreed at once, or twice in a row after
// disagreeing, so a passing glimpse is not taken for convergence.
func (c *viaCheck) settled() bool {
	switch {
	case !c.agrees():
		c.confirm = false
		return false
	case c.rounds == 1 || c.confirm:
		return true
	default:
		c.confirm = true
		return false
	}
}

// agrees reports whether every probe of the check saw the expected verdict
// and behaved (no wrong peer, no error).
func (c *viaCheck) agrees() bool {
	if len(c.last) != len(c.probes) {
		return false
	}
	for _, res := range c.last {
		if res.Outcome.Reached() != c.expected || res.Outcome == matrix.WrongPeer || res.Outcome == matrix.Error {
			return false
		}
	}
	return true
}

// viaCheck prepares the probes of an outcome and checks the stated verdict
// against the engine; it returns nil for an outcome that cannot be probed
// here (a source that is not in the cluster).
func (r *run) viaCheck(ctx context.Context, o Outcome, engine *matrix.Engine, dnsServers []string) *viaCheck {
	from, to := r.names.Endpoint(o.From), r.names.Endpoint(o.To)
	i := slices.IndexFunc(engine.Endpoints(), func(ep matrix.Endpoint) bool { return ep.Name == from })
	if i < 0 {
		GinkgoWriter.Printf("outcome %s -> %s via %s: no source %s here (%s)\n", o.From, o.To, o.Via.By, from, r.env.Provider)
		return nil
	}
	source := engine.Endpoints()[i]
	ns, name, _ := strings.Cut(o.Via.Service, "/")
	service := r.names.Namespace(ns) + "/" + name
	stated := recipes.Outcome{From: from, To: to, Port: o.Port.Port, Protocol: o.Port.Protocol, Via: &recipes.Via{Service: service, Port: o.Via.Port, By: o.Via.By}}
	expected, err := stated.Expected(engine, dnsServers)
	Expect(err).NotTo(HaveOccurred())
	if expected != o.Allowed {
		x, _ := engine.Explain(from, to, o.Port)
		Fail(fmt.Sprintf("the engine contradicts the stated outcome %s -> %s %s via %s %s allowed=%v (%s):\n%s", o.From, o.To, o.Port, o.Via.Service, o.Via.By, o.Allowed, o.Doc, x))
	}
	if r.unreachable[from] {
		GinkgoWriter.Printf("outcome %s -> %s via %s not probed here (%s)\n", o.From, o.To, o.Via.By, r.env.Provider)
		return nil
	}
	c := &viaCheck{outcome: o, stated: stated, source: source, expected: expected}
	svc, err := r.env.Client.CoreV1().Services(r.names.Namespace(ns)).Get(ctx, name, metav1.GetOptions{})
	Expect(err).NotTo(HaveOccurred(), "reading Service %s", service)
	probe := matrix.Probe{Host: recipes.DNSName(service, source.Namespace), Port: o.Via.Port, Protocol: o.Port.Protocol, Expect: to}
	switch o.Via.By {
	case recipes.ByName:
		c.probes = []matrix.Probe{probe}
	case recipes.Lookup:
		c.probes = []matrix.Probe{{Host: probe.Host, Protocol: matrix.ProtocolDNS}}
	case recipes.ByClusterIP:
		probe.Host = svc.Spec.ClusterIP
		c.probes = []matrix.Probe{probe}
	case recipes.ByNodePort:
		probe.Port = nodePort(svc, o)
		for _, ip := range r.nodeAddresses(ctx) {
			probe.Host = ip
			c.probes = append(c.probes, probe)
		}
	default:
		Fail(fmt.Sprintf("outcome %s -> %s: unknown access %q", o.From, o.To, o.Via.By))
	}
	for i := range c.probes {
		c.probes[i].ID = i
	}
	return c
}

// nodePort returns the node port of the Service port an outcome uses.
func nodePort(svc *corev1.Service, o Outcome) int32 {
	for _, p := range svc.Spec.Ports {
		if p.Port == o.Via.Port && p.Protocol == o.Port.Protocol {
			Expect(p.NodePort).NotTo(BeZero(), "Service %s/%s port %d has no node port", svc.Namespace, svc.Name, p.Port)
			return p.NodePort
		}
	}
	Fail(fmt.Sprintf("Service %s/%s has no port %d/%s", svc.Namespace, svc.Name, o.Via.Port, o.Port.Protocol))
	return 0
}

// nodeAddresses returns every node's InternalIP.
func (r *run) nodeAddresses(ctx context.Context) []string {
	nodes, err := r.env.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	Expect(err).NotTo(HaveOccurred())
	var out []string
	for _, n := range nodes.Items {
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				out = append(out, a.Address)
			}
		}
	}
	Expect(out).NotTo(BeEmpty(), "no node has an InternalIP")
	return out
}

// engineWithDNS returns an engine over the model plus the cluster DNS
// server pods (and kube-system's policies), and the DNS pods' names.
func (r *run) engineWithDNS(ctx context.Context, model *matrix.Model, policies []*networkingv1.NetworkPolicy) (*matrix.Engine, []string) {
	m := *model
	m.Namespaces = slices.Clone(model.Namespaces)
	m.Pods = slices.Clone(model.Pods)
	pods, err := r.env.Client.CoreV1().Pods(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{LabelSelector: clusterDNSLabel})
	Expect(err).NotTo(HaveOccurred(), "listing the cluster DNS pods")
	var servers []string
	for _, p := range pods.Items {
		if !podReady(&p) {
			continue
		}
		name := matrix.PodName(p.Namespace, p.Name)
		servers = append(servers, name)
		if slices.ContainsFunc(m.Pods, func(mp matrix.Pod) bool { return matrix.PodName(mp.Namespace, mp.Name) == name }) {
			continue
		}
		m.Pods = append(m.Pods, observe.Pod(&p))
	}
	Expect(servers).NotTo(BeEmpty(), "the cluster has no ready DNS pod (%s in kube-system)", clusterDNSLabel)
	if !slices.ContainsFunc(m.Namespaces, func(ns matrix.Namespace) bool { return ns.Name == metav1.NamespaceSystem }) {
		ns, err := r.env.Client.CoreV1().Namespaces().Get(ctx, metav1.NamespaceSystem, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		m.Namespaces = append(m.Namespaces, matrix.Namespace{Name: ns.Name, Labels: ns.Labels})
		list, err := r.env.Client.NetworkingV1().NetworkPolicies(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{})
		Expect(err).NotTo(HaveOccurred())
		for i := range list.Items {
			policies = append(slices.Clip(policies), &list.Items[i])
		}
	}
	engine, err := matrix.NewEngine(&m, policies)
	Expect(err).NotTo(HaveOccurred(), "modelling the cluster DNS")
	return engine, servers
}

// describeResults renders the results of a check's probes.
func describeResults(probes []matrix.Probe, results []matrix.Result) string {
	if len(results) == 0 {
		return "not probed"
	}
	var parts []string
	for _, res := range results {
		host := ""
		if res.ID >= 0 && res.ID < len(probes) {
			host = probes[res.ID].String() + ": "
		}
		part := host + string(res.Outcome)
		if res.Detail != "" {
			part += " (" + res.Detail + ")"
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, "; ")
}

func verdictWord(allowed bool) string {
	if allowed {
		return "allowed"
	}
	return "denied"
}
