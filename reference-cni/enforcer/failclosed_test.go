package enforcer_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/knftables"

	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer"
	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer/nft"
)

// fakeNode is an enforcer over a fake API server and fake nftables, for tests
// that need neither root nor real traffic.
type fakeNode struct {
	client  *fake.Clientset
	nft     *knftables.Fake
	metrics *enforcer.Metrics

	mu      sync.Mutex
	commits []enforcer.Commit
	notify  chan struct{}
}

func startFakeNode(t *testing.T, opts enforcer.Options, objects ...*corev1.Pod) *fakeNode {
	t.Helper()
	client := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "x"}})
	for _, p := range objects {
		if _, err := client.CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	watches := make(chan struct{}, 8)
	client.PrependWatchReactor("*", func(action k8stesting.Action) (bool, watch.Interface, error) {
		w, err := client.Tracker().Watch(action.GetResource(), action.GetNamespace())
		if err == nil {
			watches <- struct{}{}
		}
		return true, w, err
	})
	n := &fakeNode{client: client, nft: knftables.NewFake(knftables.InetFamily, nft.TableName), notify: make(chan struct{})}
	opts.Node, opts.Logger, opts.OnCommit = "node1", testLogger(t), n.record
	e, err := enforcer.New(client, n.nft, opts)
	if err != nil {
		t.Fatal(err)
	}
	n.metrics = e.Metrics()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := e.Run(ctx); err != nil {
			t.Errorf("enforcer: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	for range 3 {
		select {
		case <-watches:
		case <-time.After(convergeTimeout):
			t.Fatal("the enforcer did not start its watches")
		}
	}
	n.waitFor(t, "a first sync", func(enforcer.Commit) bool { return true })
	return n
}

func (n *fakeNode) record(c enforcer.Commit) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.commits = append(n.commits, c)
	close(n.notify)
	n.notify = make(chan struct{})
}

func (n *fakeNode) waitFor(t *testing.T, what string, ok func(enforcer.Commit) bool) enforcer.Commit {
	t.Helper()
	deadline := time.After(convergeTimeout)
	for {
		n.mu.Lock()
		commits, notify := n.commits, n.notify
		n.mu.Unlock()
		if len(commits) > 0 && ok(commits[len(commits)-1]) {
			return commits[len(commits)-1]
		}
		select {
		case <-notify:
		case <-deadline:
			t.Fatalf("no commit with %s within %v", what, convergeTimeout)
		}
	}
}

// isolated returns the addresses the fake table isolates for ingress.
func (n *fakeNode) isolated(t *testing.T) []string {
	t.Helper()
	elems, err := n.nft.ListElements(context.Background(), "set", "ingress-isolated-ip4")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range elems {
		out = append(out, strings.Join(e.Key, " . "))
	}
	return out
}

func runningPod(name, ip string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: name, Labels: labels},
		Spec:       corev1.PodSpec{NodeName: "node1"},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}},
	}
}

// TestUnenforceablePolicyKeepsPreviousRuleset: a policy whose podSelector
// stops parsing (a broken source; the API server rejects those) must not open
// the pod it isolated. The enforcer keeps its previous ruleset, also across
// later changes, and reports the policy in its metrics and in an event.
func TestUnenforceablePolicyKeepsPreviousRuleset(t *testing.T) {
	n := startFakeNode(t, enforcer.Options{}, runningPod("a", "10.244.1.10", map[string]string{"pod": "a"}))
	ctx := context.Background()
	policies := n.client.NetworkingV1().NetworkPolicies("x")
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "deny-a"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"pod": "a"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		},
	}
	if _, err := policies.Create(ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	n.waitFor(t, "the policy", func(c enforcer.Commit) bool { return len(c.Input.Policies) == 1 })
	if got := n.isolated(t); len(got) != 1 || got[0] != "10.244.1.10" {
		t.Fatalf("isolated = %v, want pod a", got)
	}

	np.Spec.PodSelector.MatchLabels["bad key!"] = "x"
	if _, err := policies.Update(ctx, np, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	c := n.waitFor(t, "the broken policy", func(c enforcer.Commit) bool {
		return len(c.Input.Policies) == 1 && len(c.Input.Policies[0].Spec.PodSelector.MatchLabels) == 2
	})
	if len(c.Unenforceable) != 1 || c.Unenforceable[0].Name != "deny-a" {
		t.Errorf("commit unenforceable = %v, want x/deny-a", c.Unenforceable)
	}
	if got := n.isolated(t); len(got) != 1 || got[0] != "10.244.1.10" {
		t.Fatalf("after the policy broke, isolated = %v: pod a was opened", got)
	}
	// A new pod while the policy is broken changes nothing either.
	if _, err := n.client.CoreV1().Pods("x").Create(ctx, runningPod("b", "10.244.1.11", map[string]string{"pod": "a"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	n.waitFor(t, "pod b", func(c enforcer.Commit) bool { return len(c.Input.Pods) == 2 })
	if got := n.isolated(t); len(got) != 1 || got[0] != "10.244.1.10" {
		t.Errorf("with the policy broken, isolated = %v, want the previous ruleset (pod a only)", got)
	}

	var metrics strings.Builder
	n.metrics.WriteTo(&metrics)
	if !strings.Contains(metrics.String(), "netpolcheck_enforcer_unenforceable_policies 1\n") {
		t.Errorf("metrics do not count the policy:\n%s", metrics.String())
	}
	events, err := n.client.CoreV1().Events("x").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(events.Items) != 1 || events.Items[0].Reason != enforcer.ReasonPolicyNotEnforced ||
		events.Items[0].InvolvedObject.Name != "deny-a" || events.Items[0].Type != corev1.EventTypeWarning {
		t.Errorf("events = %+v, want one Warning %s on deny-a", events.Items, enforcer.ReasonPolicyNotEnforced)
	}

	// Fixed: the new state is programmed, pod b included.
	delete(np.Spec.PodSelector.MatchLabels, "bad key!")
	if _, err := policies.Update(ctx, np, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	c = n.waitFor(t, "the fixed policy", func(c enforcer.Commit) bool {
		return len(c.Input.Policies) == 1 && len(c.Input.Policies[0].Spec.PodSelector.MatchLabels) == 1
	})
	if len(c.Unenforceable) != 0 {
		t.Errorf("fixed policy still unenforceable: %v", c.Unenforceable)
	}
	if got := n.isolated(t); len(got) != 2 {
		t.Errorf("after the fix, isolated = %v, want pods a and b", got)
	}
}

// TestResyncRestoresTableWithoutEvents: a table deleted from outside is back within
// the resync period, with no event to prompt it.
func TestResyncRestoresTableWithoutEvents(t *testing.T) {
	const resync = 200 * time.Millisecond
	n := startFakeNode(t, enforcer.Options{Resync: resync}, runningPod("a", "10.244.1.10", map[string]string{"pod": "a"}))
	ctx := context.Background()
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "deny-a"},
		Spec:       networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"pod": "a"}}},
	}
	if _, err := n.client.NetworkingV1().NetworkPolicies("x").Create(ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	n.waitFor(t, "the policy", func(c enforcer.Commit) bool { return len(c.Input.Policies) == 1 })
	tx := n.nft.NewTransaction()
	tx.Delete(&knftables.Table{})
	if err := n.nft.Run(ctx, tx); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	for {
		elems, err := n.nft.ListElements(ctx, "set", "ingress-isolated-ip4")
		if err == nil && len(elems) == 1 {
			break
		}
		if time.Since(deleted) > 3*resync {
			t.Fatalf("table not restored within %v (resync every %v)", 3*resync, resync)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("restored after %v", time.Since(deleted).Round(time.Millisecond))
}
