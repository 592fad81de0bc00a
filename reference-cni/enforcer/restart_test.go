package enforcer_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer"
	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer/internal/kubemodel"
	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer/internal/testnet"
	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer/nft"
)

// prober probes denied connections without pause from several goroutines,
// counting attempts and successes.
type prober struct {
	attempts, successes atomic.Int64
	stop                context.CancelFunc
	wg                  sync.WaitGroup
}

type connection struct {
	from, to string
	pp       matrix.PortProtocol
}

func startProber(topo *testnet.Topology, conns []connection, perConn int) *prober {
	ctx, cancel := context.WithCancel(context.Background())
	p := &prober{stop: cancel}
	for _, c := range conns {
		for range perConn {
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				for ctx.Err() == nil {
					outcome, _ := topo.Probe(c.from, c.to, c.pp, 100*time.Millisecond)
					p.attempts.Add(1)
					if outcome.Reached() {
						p.successes.Add(1)
					}
				}
			}()
		}
	}
	return p
}

func (p *prober) finish() (attempts, successes int64) {
	p.stop()
	p.wg.Wait()
	return p.attempts.Load(), p.successes.Load()
}

// TestRestartKeepsIsolation probes denied connections continuously while the
// enforcer is stopped and started again, several times, once with a policy
// change while it was down: no probe may get through. A naive restart that
// removes the table first is run last as a control, to show the probing
// would catch a window.
func TestRestartKeepsIsolation(t *testing.T) {
	c := newTestCluster(t, kubemodel.Upstream(1).Model())
	policies := parsePolicies(t, "deny", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-a}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress: [{from: [{podSelector: {matchLabels: {pod: c}}}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-egress, namespace: y}
spec: {podSelector: {matchLabels: {pod: b}}, policyTypes: [Egress]}
`)
	c.start(enforcer.Options{})
	c.apply(policies)
	c.check("before restarts")

	tcp := matrix.PortProtocol{Port: 80, Protocol: corev1.ProtocolTCP}
	udp := matrix.PortProtocol{Port: 81, Protocol: corev1.ProtocolUDP}
	sctp := matrix.PortProtocol{Port: 80, Protocol: corev1.ProtocolSCTP}
	denied := []connection{
		{"x/b", "x/a", tcp}, {"y/a", "x/a", udp}, {"ext1", "x/a", sctp}, // ingress of x/a
		{"y/b", "z/c", tcp}, {"y/b", "ext2", udp}, // egress of y/b
	}
	for _, d := range denied {
		if outcome, err := c.topo.Probe(d.from, d.to, d.pp, time.Second); outcome.Reached() {
			t.Fatalf("%s -> %s %s is open before any restart: %s %v", d.from, d.to, d.pp, outcome, err)
		}
	}
	node := c.topo.Nodes["node1"]
	p := startProber(c.topo, denied, 4)
	for round := range 4 {
		c.enforcers["node1"].stop()
		time.Sleep(300 * time.Millisecond) // the enforcer is down
		if round == 2 {
			// a change while down: the new process must pick it up
			policies = append(policies, parsePolicies(t, "while-down", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-z}
spec: {podSelector: {}, policyTypes: [Ingress], ingress: [{from: [{namespaceSelector: {matchLabels: {ns: z}}}]}]}
`)...)
			c.setPolicies(policies)
		}
		r := c.startOn("node1", node.Path, enforcer.Options{})
		cm := r.waitFor(t, "the policies after restart", holdsPolicies(policies))
		if !r.allCommits()[0].Programmed.Full {
			t.Errorf("round %d: the first sync after a restart was not full", round)
		}
		t.Logf("round %d: restarted; first full sync committed %d elements in %v", round, cm.Programmed.Elements, r.allCommits()[0].Total)
		time.Sleep(200 * time.Millisecond)
	}
	attempts, successes := p.finish()
	t.Logf("%d probes of denied connections over 4 restarts, %d got through", attempts, successes)
	if successes != 0 {
		t.Errorf("%d of %d probes of denied connections got through during restarts", successes, attempts)
	}
	if attempts < 100 {
		t.Errorf("only %d probes ran: the prober is too slow to show anything", attempts)
	}
	c.check("after restarts")

	// Control: uninstall the table before starting again, as a naive
	// enforcer would. The same probing must catch the open window.
	c.enforcers["node1"].stop()
	control := startProber(c.topo, denied, 4)
	time.Sleep(100 * time.Millisecond)
	nftables, err := nft.NewInNetns(node.Path)
	if err != nil {
		t.Fatal(err)
	}
	if err := nft.Uninstall(context.Background(), nftables); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	c.startOn("node1", node.Path, enforcer.Options{}).waitFor(t, "the policies", holdsPolicies(policies))
	attempts, successes = control.finish()
	t.Logf("control (table removed before start): %d probes, %d got through", attempts, successes)
	if successes == 0 {
		t.Errorf("the control restart opened a window but no probe caught it: the probing is blind")
	}
}
