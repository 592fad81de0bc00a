package enforcer_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/matrix/manifest"
	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer"
	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer/internal/kubemodel"
	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer/internal/testnet"
	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer/nft"
)

const (
	// deniedTimeout bounds every probe: a denied probe costs this much.
	deniedTimeout = 300 * time.Millisecond
	// recheckTimeout is the timeout of the second look at a mismatching cell.
	recheckTimeout   = 2 * time.Second
	probeParallelism = 256
	convergeTimeout  = 30 * time.Second
)

// testCluster is a model brought up in namespaces, a fake API server holding
// its namespaces and pods, and one enforcer per node watching it.
type testCluster struct {
	t         *testing.T
	model     *matrix.Model
	topo      *testnet.Topology
	client    *fake.Clientset
	watches   chan string
	enforcers map[string]*runningEnforcer
	policies  []*networkingv1.NetworkPolicy
}

// runningEnforcer is an enforcer started by the test, with its commits.
type runningEnforcer struct {
	node   string
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	latest  *enforcer.Commit
	commits []enforcer.Commit
	notify  chan struct{} // closed and replaced at every commit
}

func (r *runningEnforcer) record(c enforcer.Commit) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.latest = &c
	r.commits = append(r.commits, c)
	close(r.notify)
	r.notify = make(chan struct{})
}

// waitFor waits until the latest commit satisfies ok and returns it.
func (r *runningEnforcer) waitFor(t testing.TB, what string, ok func(enforcer.Commit) bool) enforcer.Commit {
	t.Helper()
	deadline := time.After(convergeTimeout)
	for {
		r.mu.Lock()
		latest, notify := r.latest, r.notify
		r.mu.Unlock()
		if latest != nil && ok(*latest) {
			return *latest
		}
		select {
		case <-notify:
		case <-deadline:
			t.Fatalf("enforcer of %s: no commit with %s within %v", r.node, what, convergeTimeout)
		}
	}
}

func (r *runningEnforcer) allCommits() []enforcer.Commit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]enforcer.Commit(nil), r.commits...)
}

// newTestCluster builds the model's network and fake API server; no
// enforcer runs yet.
func newTestCluster(t *testing.T, m *matrix.Model) *testCluster {
	t.Helper()
	topo, err := testnet.Build(testnet.New(t), m)
	if err != nil {
		t.Fatal(err)
	}
	if err := topo.Serve(); err != nil {
		t.Fatal(err)
	}
	var objects []runtime.Object
	for _, ns := range kubemodel.Namespaces(m) {
		objects = append(objects, ns)
	}
	for _, p := range kubemodel.Pods(m) {
		objects = append(objects, p)
	}
	client := fake.NewClientset(objects...)
	c := &testCluster{t: t, model: m, topo: topo, client: client, watches: make(chan string, 64), enforcers: map[string]*runningEnforcer{}}
	// The fake clientset drops events that happen between an informer's
	// list and its watch: record when watches start, so that changes wait
	// for them.
	client.PrependWatchReactor("*", func(action k8stesting.Action) (bool, watch.Interface, error) {
		w, err := client.Tracker().Watch(action.GetResource(), action.GetNamespace())
		if err == nil {
			select {
			case c.watches <- action.GetResource().Resource:
			default:
			}
		}
		return true, w, err
	})
	return c
}

func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if testing.Verbose() && os.Getenv("ENFORCER_LOG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// start runs an enforcer for every node with the given options (Node and
// OnCommit are filled in), and waits until each has committed its first sync
// and watches the three resources. They stop when the test ends.
func (c *testCluster) start(opts enforcer.Options) {
	c.t.Helper()
	for node, ns := range c.topo.Nodes {
		c.startOn(node, ns.Path, opts)
	}
}

func (c *testCluster) startOn(node, netnsPath string, opts enforcer.Options) *runningEnforcer {
	c.t.Helper()
	nftables, err := nft.NewInNetns(netnsPath)
	if err != nil {
		c.t.Fatal(err)
	}
	r := &runningEnforcer{node: node, done: make(chan struct{}), notify: make(chan struct{})}
	opts.Node, opts.OnCommit = node, r.record
	if opts.Logger == nil {
		opts.Logger = testLogger(c.t)
	}
	e, err := enforcer.New(c.client, nftables, opts)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		if err := e.Run(ctx); err != nil {
			c.t.Errorf("enforcer of %s: %v", node, err)
		}
	}()
	c.t.Cleanup(r.stop)
	c.enforcers[node] = r
	for range 3 {
		select {
		case <-c.watches:
		case <-time.After(convergeTimeout):
			c.t.Fatalf("enforcer of %s did not start its watches", node)
		}
	}
	r.waitFor(c.t, "a first sync", func(enforcer.Commit) bool { return true })
	return r
}

func (r *runningEnforcer) stop() {
	r.cancel()
	<-r.done
}

// setPolicies makes the API server hold exactly policies.
func (c *testCluster) setPolicies(policies []*networkingv1.NetworkPolicy) {
	c.t.Helper()
	ctx := context.Background()
	want := map[string]*networkingv1.NetworkPolicy{}
	for _, np := range policies {
		want[np.Namespace+"/"+np.Name] = np
	}
	for _, old := range c.policies {
		if _, keep := want[old.Namespace+"/"+old.Name]; !keep {
			if err := c.client.NetworkingV1().NetworkPolicies(old.Namespace).Delete(ctx, old.Name, metav1.DeleteOptions{}); err != nil {
				c.t.Fatalf("deleting policy %s/%s: %v", old.Namespace, old.Name, err)
			}
		}
	}
	have := map[string]bool{}
	for _, old := range c.policies {
		have[old.Namespace+"/"+old.Name] = true
	}
	for _, np := range policies {
		api := c.client.NetworkingV1().NetworkPolicies(np.Namespace)
		var err error
		if have[np.Namespace+"/"+np.Name] {
			_, err = api.Update(ctx, np.DeepCopy(), metav1.UpdateOptions{})
		} else {
			_, err = api.Create(ctx, np.DeepCopy(), metav1.CreateOptions{})
		}
		if err != nil {
			c.t.Fatalf("writing policy %s/%s: %v", np.Namespace, np.Name, err)
		}
	}
	c.policies = policies
}

// holdsPolicies reports whether a commit compiled exactly the policies.
func holdsPolicies(policies []*networkingv1.NetworkPolicy) func(enforcer.Commit) bool {
	return func(cm enforcer.Commit) bool {
		if len(cm.Input.Policies) != len(policies) {
			return false
		}
		got := map[string]*networkingv1.NetworkPolicy{}
		for _, np := range cm.Input.Policies {
			got[np.Namespace+"/"+np.Name] = np
		}
		for _, np := range policies {
			g, ok := got[np.Namespace+"/"+np.Name]
			if !ok || !apiequality.Semantic.DeepEqual(g.Spec, np.Spec) {
				return false
			}
		}
		return true
	}
}

// apply sets the policies and waits until every enforcer committed them.
func (c *testCluster) apply(policies []*networkingv1.NetworkPolicy) {
	c.t.Helper()
	c.setPolicies(policies)
	for _, r := range c.enforcers {
		r.waitFor(c.t, fmt.Sprintf("the %d policies", len(policies)), holdsPolicies(policies))
	}
}

// check probes the whole matrix and compares it with the engine's expected
// table for the current policies. A mismatching cell is probed again with a
// longer timeout before it counts.
func (c *testCluster) check(name string) {
	c.t.Helper()
	engine, err := matrix.NewEngine(c.model, c.policies)
	if err != nil {
		c.t.Fatalf("%s: NewEngine: %v", name, err)
	}
	c.compare(name, engine, engine.Table())
}

func (c *testCluster) compare(name string, engine *matrix.Engine, expected *matrix.Table) {
	c.t.Helper()
	observed, err := c.topo.Observe(expected, deniedTimeout, probeParallelism)
	if err != nil {
		c.t.Errorf("%s: probes failed: %v", name, err)
	}
	mismatches, err := matrix.Diff(expected, observed)
	if err != nil {
		c.t.Fatal(err)
	}
	var report []string
	for _, m := range mismatches {
		outcome, perr := c.topo.Probe(m.From, m.To, m.PortProtocol(), recheckTimeout)
		if outcome.Reached() == m.Expected {
			c.t.Logf("%s: %s: right on second look (%s)", name, m.Cell, outcome)
			continue
		}
		x, _ := engine.Explain(m.From, m.To, m.PortProtocol())
		report = append(report, fmt.Sprintf("%s: expected allowed=%v, observed %s (%v)\n%s", m.Cell, m.Expected, outcome, perr, x))
	}
	if len(report) > 0 {
		cells, allowed := expected.Count()
		c.t.Errorf("%s: %d of %d cells wrong (%d expected allowed):\n%s\npolicies:\n%s\n%s",
			name, len(report), cells, allowed, strings.Join(first(report, 8), "\n"), describe(c.policies), c.ruleset())
	}
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("... and %d more", len(s)-n))
	}
	return s
}

func describe(policies []*networkingv1.NetworkPolicy) string {
	var b strings.Builder
	for _, np := range policies {
		fmt.Fprintf(&b, "  %s/%s: %s\n", np.Namespace, np.Name, policyText(np))
	}
	return b.String()
}

func policyText(np *networkingv1.NetworkPolicy) string {
	s := fmt.Sprintf("%+v", np.Spec)
	return strings.Join(strings.Fields(s), " ")
}

// ruleset dumps the table of every node, for failure messages.
func (c *testCluster) ruleset() string {
	var nodes []string
	for n := range c.topo.Nodes {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	var b strings.Builder
	for _, n := range nodes {
		out, err := c.topo.Nodes[n].Exec("nft", "list", "table", "inet", nft.TableName)
		fmt.Fprintf(&b, "--- %s (err=%v)\n%s", n, err, out)
	}
	return b.String()
}

// parsePolicies parses YAML manifests, namespace x by default.
func parsePolicies(t testing.TB, name, yaml string) []*networkingv1.NetworkPolicy {
	t.Helper()
	if strings.TrimSpace(yaml) == "" {
		return nil
	}
	ps, err := manifest.ParsePolicies(name, []byte(yaml), "x")
	if err != nil {
		t.Fatalf("parsing %s: %v", name, err)
	}
	return ps.Items
}
