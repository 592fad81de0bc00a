package compiler_test

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/matrix/generate"
	"github.com/netpolcheck/netpolcheck/matrix/manifest"
	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer/compiler"
	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer/internal/kubemodel"
)

// allows evaluates a ruleset the way the data path does: a packet between
// local and remote is allowed unless local is isolated and no entry matches.
func allows(rs *compiler.Ruleset, dir compiler.Direction, local, remote netip.Addr, proto uint8, port uint16) bool {
	row, isolated := rs.Directions[dir][local]
	if !isolated {
		return true
	}
	if _, ok := slices.BinarySearchFunc(row.AnyPort, remote, netip.Addr.Compare); ok {
		return true
	}
	if _, ok := slices.BinarySearchFunc(row.Ports, compiler.PortEntry{Remote: remote, Protocol: proto, Port: port}, compiler.PortEntry.Compare); ok {
		return true
	}
	for _, r := range row.Ranges {
		if r.RemoteFirst.Compare(remote) <= 0 && remote.Compare(r.RemoteLast) <= 0 &&
			r.ProtocolFirst <= proto && proto <= r.ProtocolLast && r.PortFirst <= port && port <= r.PortLast {
			return true
		}
	}
	return false
}

func protocolNumber(p corev1.Protocol) uint8 {
	switch p {
	case corev1.ProtocolUDP:
		return 17
	case corev1.ProtocolSCTP:
		return 132
	}
	return 6
}

// cluster compiles the policies for every node of the model.
type cluster struct {
	model     *matrix.Model
	endpoints map[string]matrix.Endpoint
	rulesets  map[string]*compiler.Ruleset
}

func compileModel(t testing.TB, m *matrix.Model, nodes int, policies []*networkingv1.NetworkPolicy) *cluster {
	t.Helper()
	c := &cluster{model: m, endpoints: map[string]matrix.Endpoint{}, rulesets: map[string]*compiler.Ruleset{}}
	for _, ep := range m.Endpoints() {
		c.endpoints[ep.Name] = ep
	}
	in := compiler.Input{Namespaces: kubemodel.Namespaces(m), Pods: kubemodel.Pods(m), Policies: policies}
	for k := 1; k <= nodes; k++ {
		in.Node = kubemodel.NodeName(k)
		rs, err := compiler.Compile(in)
		if err != nil {
			t.Fatalf("Compile(%s): %v", in.Node, err)
		}
		c.rulesets[in.Node] = rs
	}
	return c
}

// allowed says whether the compiled rulesets let from reach to on pp: egress
// on the source's node, ingress on the destination's, over the destination's
// primary address.
func (c *cluster) allowed(from, to string, pp matrix.PortProtocol) bool {
	if from == to {
		return true
	}
	src, dst := c.endpoints[from], c.endpoints[to]
	dstIP, _ := dst.PrimaryIP()
	srcIP, ok := src.IPFor(dstIP)
	if !ok {
		return false
	}
	proto, port := protocolNumber(pp.Protocol), uint16(pp.Port)
	if !src.External && !allows(c.rulesets[src.Node], compiler.Egress, srcIP, dstIP, proto, port) {
		return false
	}
	return dst.External || allows(c.rulesets[dst.Node], compiler.Ingress, dstIP, srcIP, proto, port)
}

// compare checks every cell of the engine's table against the rulesets.
func compare(t *testing.T, name string, c *cluster, policies []*networkingv1.NetworkPolicy) {
	t.Helper()
	engine, err := matrix.NewEngine(c.model, policies)
	if err != nil {
		t.Fatalf("%s: NewEngine: %v", name, err)
	}
	bad := 0
	engine.Table().Each(func(cell matrix.Cell) bool {
		got := c.allowed(cell.From, cell.To, cell.PortProtocol())
		if got != cell.Allowed {
			bad++
			if bad <= 3 {
				x, _ := engine.Explain(cell.From, cell.To, cell.PortProtocol())
				t.Errorf("%s: %s: compiled allowed=%v, engine %v\n%s", name, cell, got, cell.Allowed, x)
			}
		}
		return true
	})
	if bad > 0 {
		t.Fatalf("%s: %d cells differ; policies:\n%s", name, bad, dump(policies))
	}
}

func dump(policies []*networkingv1.NetworkPolicy) string {
	var b strings.Builder
	for _, np := range policies {
		fmt.Fprintf(&b, "%s/%s: %+v\n", np.Namespace, np.Name, np.Spec)
	}
	return b.String()
}

// TestCompileMatchesEngine compares the compiled rulesets with the engine's
// truth table, cell by cell, on random policy sets, with IPv4 and with IPv6
// as the probed family, on one and on two nodes.
func TestCompileMatchesEngine(t *testing.T) {
	cases := 1500
	if testing.Short() {
		cases = 200
	}
	for _, variant := range []struct {
		name   string
		layout kubemodel.Layout
	}{
		{"ipv4-2nodes", kubemodel.Upstream(2)},
		{"ipv6-2nodes", func() kubemodel.Layout { l := kubemodel.Upstream(2); l.IPv6First = true; return l }()},
		{"ipv4-1node", kubemodel.Upstream(1)},
	} {
		t.Run(variant.name, func(t *testing.T) {
			gen := generate.New(generate.Seeded(uint64(len(variant.name))), kubemodel.Universe())
			m := variant.layout.Model()
			for i := range cases {
				policies := gen.Policies(fmt.Sprintf("case%d", i), 4)
				c := compileModel(t, m, variant.layout.Nodes, policies)
				compare(t, fmt.Sprintf("case %d", i), c, policies)
			}
		})
	}
}

func parse(t *testing.T, yaml string) []*networkingv1.NetworkPolicy {
	t.Helper()
	ps, err := manifest.ParsePolicies(t.Name(), []byte(yaml), "x")
	if err != nil {
		t.Fatalf("parsing policies: %v", err)
	}
	return ps.Items
}

func TestCompileDenyAllAndAllowOnePort(t *testing.T) {
	layout := kubemodel.Upstream(1)
	layout.DualStack = false
	m := layout.Model()
	policies := parse(t, `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-b}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{podSelector: {matchLabels: {pod: b}}}]
    ports: [{port: 80}, {port: serve-81-udp, protocol: UDP}, {port: 81, endPort: 90, protocol: SCTP}]
`)
	c := compileModel(t, m, 1, policies)
	rs := c.rulesets["node1"]
	a, b := netip.MustParseAddr("10.244.1.10"), netip.MustParseAddr("10.244.1.11")
	in := rs.Directions[compiler.Ingress]
	row, ok := in[a]
	if len(in) != 1 || !ok {
		t.Fatalf("isolated = %v, want only x/a", in)
	}
	want := []compiler.PortEntry{{Remote: b, Protocol: 6, Port: 80}, {Remote: b, Protocol: 17, Port: 81}}
	if !slices.Equal(row.Ports, want) {
		t.Errorf("ports = %v, want %v", row.Ports, want)
	}
	if got := fmt.Sprint(row.Ranges); got != "[10.244.1.11-10.244.1.11 proto 132-132 port 81-90]" {
		t.Errorf("ranges = %s", got)
	}
	if !slices.Equal(row.AnyPort, []netip.Addr{a}) {
		t.Errorf("any-port = %v, want only x/a to itself", row.AnyPort)
	}
	if n := len(rs.Directions[compiler.Egress]); n != 0 {
		t.Errorf("%d pods isolated for egress, want none", n)
	}
	compare(t, t.Name(), c, policies)
}

func TestCompileIPBlockExcept(t *testing.T) {
	layout := kubemodel.Upstream(1)
	layout.DualStack = false
	m := layout.Model()
	policies := parse(t, `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: block}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 192.0.2.0/24, except: [192.0.2.10/32]}}]
  - to: [{ipBlock: {cidr: 192.0.2.0/28}}]
    ports: [{port: 81, protocol: UDP}]
`)
	c := compileModel(t, m, 1, policies)
	got := fmt.Sprint(c.rulesets["node1"].Directions[compiler.Egress][netip.MustParseAddr("10.244.1.10")].Ranges)
	want := "[192.0.2.0-192.0.2.9 proto 0-255 port 0-65535" +
		" 192.0.2.10-192.0.2.10 proto 17-17 port 81-81" +
		" 192.0.2.11-192.0.2.255 proto 0-255 port 0-65535]"
	if got != want {
		t.Errorf("ranges:\n got %s\nwant %s", got, want)
	}
	compare(t, t.Name(), c, policies)
}

func TestCompileIgnoresPodsWithoutAddressHostNetworkAndFinished(t *testing.T) {
	layout := kubemodel.Upstream(1)
	m := layout.Model()
	pods := kubemodel.Pods(m)
	pods[0].Status.PodIP, pods[0].Status.PodIPs = "", nil // x/a: no address yet
	pods[1].Spec.HostNetwork = true                       // x/b
	pods[2].Status.Phase = corev1.PodSucceeded            // x/c
	policies := parse(t, `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny}
spec:
  podSelector: {}
  egress: [{to: [{namespaceSelector: {}}]}]
`)
	rs, err := compiler.Compile(compiler.Input{Node: "node1", Namespaces: kubemodel.Namespaces(m), Pods: pods, Policies: policies})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(rs.Directions[compiler.Ingress]); n != 0 {
		t.Errorf("%d addresses isolated, want none: every pod of x is ineligible", n)
	}
	// Egress was defaulted in (the policy has egress rules), but no pod of x is eligible.
	if n := len(rs.Directions[compiler.Egress]); n != 0 {
		t.Errorf("%d addresses isolated for egress, want none", n)
	}
}

func TestCompileReportsBadSelectorAndFailsClosed(t *testing.T) {
	m := kubemodel.Upstream(1).Model()
	policies := parse(t, `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{podSelector: {matchLabels: {pod: b}}}]
`)
	policies[0].Spec.Ingress[0].From[0].PodSelector.MatchExpressions = append(policies[0].Spec.Ingress[0].From[0].PodSelector.MatchExpressions,
		policies[0].Spec.PodSelector.MatchExpressions...)
	policies[0].Spec.Ingress[0].From[0].PodSelector.MatchLabels["bad key!"] = "x"
	rs, err := compiler.Compile(compiler.Input{Node: "node1", Namespaces: kubemodel.Namespaces(m), Pods: kubemodel.Pods(m), Policies: policies})
	if err == nil || !strings.Contains(err.Error(), "x/deny") {
		t.Fatalf("err = %v, want a problem naming x/deny", err)
	}
	in := rs.Directions[compiler.Ingress]
	if len(in) != 2 {
		t.Errorf("want x/a isolated (both families), got %v", in)
	}
	for ip, row := range in {
		if !slices.Equal(row.AnyPort, []netip.Addr{ip}) || len(row.Ports)+len(row.Ranges) != 0 {
			t.Errorf("%s: want it only reaching itself, got %+v", ip, row)
		}
	}
}

// TestCompileFlagsUnenforceablePolicy: a policy whose podSelector does not
// parse would leave the pods it isolates open if it were just dropped, so it
// is reported apart from problems that can only deny more.
func TestCompileFlagsUnenforceablePolicy(t *testing.T) {
	m := kubemodel.Upstream(1).Model()
	policies := parse(t, `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: broken}
spec:
  podSelector: {matchLabels: {pod: a}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: badpeer}
spec:
  podSelector: {matchLabels: {pod: b}}
  ingress:
  - from: [{podSelector: {matchLabels: {pod: c}}}]
`)
	policies[0].Spec.PodSelector.MatchLabels["bad key!"] = "x"
	policies[1].Spec.Ingress[0].From[0].PodSelector.MatchLabels["bad key!"] = "x"
	in := compiler.Input{Node: "node1", Namespaces: kubemodel.Namespaces(m), Pods: kubemodel.Pods(m)}
	for _, tc := range []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
		want     []string
	}{
		{"bad podSelector", policies[:1], []string{"x/broken"}},
		{"bad peer only", policies[1:], nil},
		{"both", policies, []string{"x/broken"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in.Policies = tc.policies
			_, err := compiler.Compile(in)
			if err == nil {
				t.Fatal("no problem reported")
			}
			var got []string
			for _, u := range compiler.Unenforceable(err) {
				got = append(got, u.Namespace+"/"+u.Name)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("unenforceable = %v, want %v (err: %v)", got, tc.want, err)
			}
		})
	}
}

// TestSidecarNamedPortsMatchEngine: the compiler and the engine resolve named
// ports against a pod's sidecars (restartable init containers) alike, for
// ingress and egress.
func TestSidecarNamedPortsMatchEngine(t *testing.T) {
	m := kubemodel.Upstream(2).Model()
	for i := range m.Pods {
		if m.Pods[i].Namespace == "x" && m.Pods[i].Name == "a" {
			m.Pods[i].Sidecars = []matrix.Container{{Name: "proxy", Ports: []matrix.ContainerPort{{Name: "proxy", ContainerPort: 81, Protocol: corev1.ProtocolTCP}}}}
		}
	}
	policies := parse(t, `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: in-proxy}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{port: proxy}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: out-proxy, namespace: y}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress: [{ports: [{port: proxy}]}]
`)
	compare(t, "sidecar named ports", compileModel(t, m, 2, policies), policies)
}
