package enforcer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer"
	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer/compiler"
	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer/internal/testnet"
	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer/nft"
)

// The benchmark workload: 50 namespaces of 20 pods (1,000 pods) and 20
// policies per namespace (1,000 policies), shaped like a microservice
// cluster: per namespace a default deny, an allow per app from the next app
// (numbered and named ports), allows from frontends of other teams'
// namespaces, egress to an external range and to DNS pods, an ipBlock allow
// with an except, and an endPort range. Pods are spread over `nodes` nodes;
// the measured enforcer runs for node1.
const (
	benchNamespaces  = 50
	benchPodsPerNS   = 20
	benchPolicyPerNS = 20
)

func ptrTo[T any](v T) *T { return &v }

func benchPort(proto corev1.Protocol, port intstr.IntOrString, end *int32) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &port, EndPort: end}
}

func benchWorkload(nodes int) (objects []runtime.Object, policies []*networkingv1.NetworkPolicy) {
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	for n := range benchNamespaces {
		ns := fmt.Sprintf("ns-%02d", n)
		objects = append(objects, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: ns, Labels: map[string]string{"team": fmt.Sprintf("t%d", n%5), corev1.LabelMetadataName: ns},
		}})
		for i := range benchPodsPerNS {
			global := n*benchPodsPerNS + i
			node := global%nodes + 1
			local := global / nodes
			role := []string{"frontend", "backend", "db", "dns"}[i%4]
			objects = append(objects, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{
					Namespace: ns, Name: fmt.Sprintf("pod-%02d", i),
					Labels: map[string]string{"app": fmt.Sprintf("app-%d", i%10), "role": role},
				},
				Spec: corev1.PodSpec{NodeName: fmt.Sprintf("node%d", node), Containers: []corev1.Container{{
					Name: "main", Ports: []corev1.ContainerPort{
						{Name: "http", ContainerPort: 8080, Protocol: tcp},
						{Name: "dns", ContainerPort: 53, Protocol: udp},
					},
				}}},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIPs: []corev1.PodIP{{IP: fmt.Sprintf("10.%d.%d.%d", 200+node, local/250, local%250+2)}}},
			})
		}
		add := func(name string, spec networkingv1.NetworkPolicySpec) {
			policies = append(policies, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec})
		}
		add("default-deny", networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}})
		for a := range 10 {
			add(fmt.Sprintf("allow-app-%d", a), networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": fmt.Sprintf("app-%d", a)}},
				Ingress: []networkingv1.NetworkPolicyIngressRule{{
					From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": fmt.Sprintf("app-%d", (a+1)%10)}}}},
					Ports: []networkingv1.NetworkPolicyPort{benchPort(tcp, intstr.FromInt32(8080), nil), benchPort(tcp, intstr.FromString("http"), nil), benchPort(tcp, intstr.FromInt32(9090), nil)},
				}},
			})
		}
		for f := range 5 {
			add(fmt.Sprintf("from-frontends-%d", f), networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"role": []string{"frontend", "backend", "db", "dns", "frontend"}[f]}},
				Ingress: []networkingv1.NetworkPolicyIngressRule{{
					From: []networkingv1.NetworkPolicyPeer{{
						NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": fmt.Sprintf("t%d", (n+f)%5)}},
						PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"role": "frontend"}},
					}},
					Ports: []networkingv1.NetworkPolicyPort{benchPort(tcp, intstr.FromInt32(int32(443+f)), nil)},
				}},
			})
		}
		add("egress-external", networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"role": "backend"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To:    []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "192.0.2.0/24", Except: []string{"192.0.2.10/32"}}}},
				Ports: []networkingv1.NetworkPolicyPort{benchPort(tcp, intstr.FromInt32(443), nil)},
			}},
		})
		add("egress-dns", networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"role": "backend"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To:    []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}, PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "dns"}}}},
				Ports: []networkingv1.NetworkPolicyPort{benchPort(udp, intstr.FromString("dns"), nil)},
			}},
		})
		add("from-monitoring", networkingv1.NetworkPolicySpec{
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"10.96.0.0/12"}}}},
				Ports: []networkingv1.NetworkPolicyPort{benchPort(tcp, intstr.FromInt32(9100), nil)},
			}},
		})
		add("node-ports", networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"role": "frontend"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				Ports: []networkingv1.NetworkPolicyPort{benchPort(tcp, intstr.FromInt32(30000), ptrTo(int32(32767)))},
			}},
		})
	}
	return objects, policies
}

// timedCommits records commits with their wall-clock time.
type timedCommits struct {
	mu      sync.Mutex
	commits []timedCommit
	notify  chan struct{}
}

type timedCommit struct {
	at time.Time
	enforcer.Commit
}

func (tc *timedCommits) record(c enforcer.Commit) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	tc.commits = append(tc.commits, timedCommit{at: time.Now(), Commit: c})
	select {
	case tc.notify <- struct{}{}:
	default:
	}
}

// after waits for the first commit that took in an event and ended after t.
func (tc *timedCommits) after(tb testing.TB, t time.Time) timedCommit {
	tb.Helper()
	timeout := time.After(30 * time.Second)
	for {
		tc.mu.Lock()
		for _, c := range tc.commits {
			if c.at.After(t) && c.Events > 0 {
				tc.mu.Unlock()
				return c
			}
		}
		tc.mu.Unlock()
		select {
		case <-tc.notify:
		case <-timeout:
			tb.Fatalf("no commit after %v within 30s", t)
		}
	}
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

// BenchmarkEventToCommit measures the time from an API change (a policy
// updated, created or deleted, a pod relabelled) to the committed nftables
// transaction, with the 1,000-pod, 1,000-policy workload, for an enforcer
// whose node holds every pod (nodes=1) or a tenth of them (nodes=10). Each
// benchmark iteration makes 200 changes, one at a time.
//
//	go test ./reference-cni/enforcer -run '^$' -bench EventToCommit -benchtime 1x
func BenchmarkEventToCommit(b *testing.B) {
	for _, nodes := range []int{1, 10} {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) { benchEventToCommit(b, nodes) })
	}
}

func benchEventToCommit(b *testing.B, nodes int) {
	objects, policies := benchWorkload(nodes)
	for _, np := range policies {
		objects = append(objects, np)
	}
	client := fake.NewClientset(objects...)
	node := testnet.New(b).Namespace("node1")
	nftables, err := nft.NewInNetns(node.Path)
	if err != nil {
		b.Fatal(err)
	}
	tc := &timedCommits{notify: make(chan struct{}, 1)}
	e, err := enforcer.New(client, nftables, enforcer.Options{Node: "node1", OnCommit: tc.record})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })

	first := tc.after(b, time.Time{})
	b.Logf("nodes=%d: first full sync: %d elements %v in %v (compile %v, nft %v)", nodes, first.Programmed.Elements,
		first.Programmed.Sets, first.Total, first.Compile, first.Programmed.Duration)
	out, err := node.Exec("nft", "list", "table", "inet", nft.TableName)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("nodes=%d: nft list table: %d lines, %d bytes", nodes, strings.Count(out, "\n"), len(out))
	time.Sleep(500 * time.Millisecond) // let the sync triggered by the initial adds pass

	api := client.NetworkingV1()
	pods := client.CoreV1()
	var latencies, inside, nftTimes, compiles []time.Duration
	var changed []int
	b.ResetTimer()
	for range b.N {
		for i := range 200 {
			nsOf := func(i int) string { return fmt.Sprintf("ns-%02d", (i*7)%benchNamespaces) }
			ns := nsOf(i)
			t0 := time.Now()
			switch i % 4 {
			case 0: // change the ports of an allow
				np, err := api.NetworkPolicies(ns).Get(ctx, fmt.Sprintf("allow-app-%d", i%10), metav1.GetOptions{})
				if err != nil {
					b.Fatal(err)
				}
				np.Spec.Ingress[0].Ports[2].Port = ptrTo(intstr.FromInt32(int32(9000 + i)))
				_, err = api.NetworkPolicies(ns).Update(ctx, np, metav1.UpdateOptions{})
				if err != nil {
					b.Fatal(err)
				}
			case 1: // a new policy
				_, err = api.NetworkPolicies(ns).Create(ctx, &networkingv1.NetworkPolicy{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("extra-%d", i)},
					Spec: networkingv1.NetworkPolicySpec{
						PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"role": "db"}},
						Ingress: []networkingv1.NetworkPolicyIngressRule{{
							From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "backend"}}}},
							Ports: []networkingv1.NetworkPolicyPort{benchPort(corev1.ProtocolTCP, intstr.FromInt32(5432), nil)},
						}},
					},
				}, metav1.CreateOptions{})
			case 2: // delete it again
				err = api.NetworkPolicies(nsOf(i-1)).Delete(ctx, fmt.Sprintf("extra-%d", i-1), metav1.DeleteOptions{})
			case 3: // relabel a pod: it changes app, so peers and selections move
				var p *corev1.Pod
				p, err = pods.Pods(ns).Get(ctx, fmt.Sprintf("pod-%02d", i%benchPodsPerNS), metav1.GetOptions{})
				if err != nil {
					b.Fatal(err)
				}
				var app int
				fmt.Sscanf(p.Labels["app"], "app-%d", &app)
				p.Labels["app"] = fmt.Sprintf("app-%d", (app+1)%10)
				_, err = pods.Pods(ns).Update(ctx, p, metav1.UpdateOptions{})
			}
			if err != nil {
				b.Fatal(err)
			}
			c := tc.after(b, t0)
			latencies = append(latencies, c.at.Sub(t0))
			inside = append(inside, c.EventLatency)
			nftTimes = append(nftTimes, c.Programmed.Duration)
			compiles = append(compiles, c.Compile)
			changed = append(changed, c.Programmed.Added+c.Programmed.Removed)
		}
	}
	b.StopTimer()
	for _, s := range [][]time.Duration{latencies, inside, nftTimes, compiles} {
		slices.Sort(s)
	}
	slices.Sort(changed)
	b.ReportMetric(float64(percentile(latencies, 0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(latencies, 0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(first.Programmed.Elements), "elements")
	b.Logf("nodes=%d: %d changes; API call to commit p50 %v p90 %v p99 %v max %v; informer event to commit p50 %v p99 %v; "+
		"compile p50 %v p99 %v; nft p50 %v p99 %v; elements changed per event median %d max %d",
		nodes, len(latencies), percentile(latencies, 0.5), percentile(latencies, 0.9), percentile(latencies, 0.99), latencies[len(latencies)-1],
		percentile(inside, 0.5), percentile(inside, 0.99), percentile(compiles, 0.5), percentile(compiles, 0.99),
		percentile(nftTimes, 0.5), percentile(nftTimes, 0.99), changed[len(changed)/2], changed[len(changed)-1])
}

// BenchmarkCompile measures compiling the workload for one node, the part
// of a sync that grows with the cluster.
func BenchmarkCompile(b *testing.B) {
	objects, policies := benchWorkload(1)
	in := compiler.Input{Node: "node1", Policies: policies}
	for _, o := range objects {
		switch o := o.(type) {
		case *corev1.Namespace:
			in.Namespaces = append(in.Namespaces, o)
		case *corev1.Pod:
			in.Pods = append(in.Pods, o)
		}
	}
	b.ResetTimer()
	for range b.N {
		if _, err := compiler.Compile(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkForwardingThroughput runs iperf3 (TCP, 3 s) between two pods of a
// node, alternating between no enforcer table at all and the 1,000-policy
// workload installed (with the two pods isolated, allowed to each other by
// one of the policies), seven runs each, and reports the medians. On a shared
// machine single runs vary a lot: compare medians, and look at the runs.
//
//	go test ./reference-cni/enforcer -run '^$' -bench ForwardingThroughput -benchtime 1x
func BenchmarkForwardingThroughput(b *testing.B) {
	if _, err := exec.LookPath("iperf3"); err != nil {
		b.Skip("iperf3 not installed")
	}
	layout := matrix.Model{
		Namespaces: []matrix.Namespace{{Name: "perf", Labels: map[string]string{corev1.LabelMetadataName: "perf"}}},
		Pods: []matrix.Pod{
			{Namespace: "perf", Name: "client", Node: "node1", Labels: map[string]string{"app": "client"}, IPs: []string{"10.244.1.10"}},
			{Namespace: "perf", Name: "server", Node: "node1", Labels: map[string]string{"app": "server"}, IPs: []string{"10.244.1.11"}},
		},
	}
	topo, err := testnet.Build(testnet.New(b), &layout)
	if err != nil {
		b.Fatal(err)
	}
	objects, policies := benchWorkload(1)
	for _, p := range layout.Pods {
		objects = append(objects, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name, Labels: p.Labels},
			Spec:       corev1.PodSpec{NodeName: p.Node},
			Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIPs: []corev1.PodIP{{IP: p.IPs[0]}}},
		})
	}
	objects = append(objects, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "perf", Labels: layout.Namespaces[0].Labels}})
	policies = append(policies, &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "perf", Name: "iperf"},
		Spec: networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "client"}}}},
				Ports: []networkingv1.NetworkPolicyPort{benchPort(corev1.ProtocolTCP, intstr.FromInt32(5201), nil)},
			}},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "server"}}}},
			}},
		},
	})
	for _, np := range policies {
		objects = append(objects, np)
	}
	node := topo.Nodes["node1"].Path
	nftables, err := nft.NewInNetns(node)
	if err != nil {
		b.Fatal(err)
	}
	client, server := topo.Endpoints["perf/client"].NS, topo.Endpoints["perf/server"].NS
	srv := exec.Command("ip", "netns", "exec", server.Name, "iperf3", "-s")
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	time.Sleep(300 * time.Millisecond)

	run := func() float64 {
		out, err := client.Exec("iperf3", "-c", "10.244.1.11", "-t", "3", "-J")
		if err != nil {
			b.Fatalf("iperf3: %v: %s", err, out)
		}
		var report struct {
			End struct {
				SumReceived struct {
					BitsPerSecond float64 `json:"bits_per_second"`
				} `json:"sum_received"`
			} `json:"end"`
		}
		if err := json.Unmarshal([]byte(out), &report); err != nil {
			b.Fatalf("iperf3 output: %v", err)
		}
		return report.End.SumReceived.BitsPerSecond / 1e9
	}
	install := func() {
		tc := &timedCommits{notify: make(chan struct{}, 1)}
		e, err := enforcer.New(fake.NewClientset(objects...), nftables, enforcer.Options{Node: "node1", OnCommit: tc.record})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); e.Run(ctx) }()
		c := tc.after(b, time.Time{})
		cancel()
		<-done
		b.Logf("installed %d policies: %d elements", len(policies), c.Programmed.Elements)
	}
	uninstall := func() {
		if err := nft.Uninstall(context.Background(), nftables); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		var without, with []float64
		for range 7 {
			uninstall()
			without = append(without, run())
			install()
			with = append(with, run())
		}
		uninstall()
		slices.Sort(without)
		slices.Sort(with)
		mid := len(with) / 2
		loss := 100 * (without[mid] - with[mid]) / without[mid]
		b.ReportMetric(without[mid], "Gbit/s-none")
		b.ReportMetric(with[mid], "Gbit/s-1000policies")
		b.ReportMetric(loss, "loss-%")
		b.Logf("TCP throughput between two pods of a node, 3 s runs: no table %.2f Gbit/s (runs %.2f), 1,000 policies %.2f Gbit/s (runs %.2f): loss %.1f%%",
			without[mid], without, with[mid], with, loss)
	}
}
