package framework

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified
	. "github.com/onsi/gomega"    //nolint:revive // as does Gomega's

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netpolcheck/netpolcheck/cluster/observe"
	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/matrix/recipes"
	"github.com/netpolcheck/netpolcheck/reports"
)

// Scenario is one test case: the namespaces and pods it needs (by logical
// names, which the framework maps to this run's), the external hosts it
// talks to, and its steps.
type Scenario struct {
	// ID is "<suite>/<case>", unique and stable; Title says what it checks.
	ID     string
	Title  string
	Labels []string
	// Namespaces and Pods are created for the scenario and deleted after it,
	// unless Model is set: then the scenario runs on that shared probe model.
	Namespaces []matrix.Namespace
	Pods       []matrix.Pod
	Model      *ProbeModel
	// Nodes adds the probe model's node endpoints (Model only; see
	// ProbeModel.NodeEndpoints) to the scenario's matrix.
	Nodes     bool
	Externals []matrix.External
	// Services are created in the scenario's namespaces after its pods
	// (not on a shared probe model); outcomes reach them through Via.
	Services []recipes.Service
	Steps    []Step
}

// Step changes policies or labels, then probes the whole matrix.
type Step struct {
	Name string
	// Manifests are NetworkPolicy manifests (YAML) applied in order with
	// logical namespaces; Delete lists "namespace/name" policies deleted first.
	Manifests string
	Delete    []string
	// Policies, when set, gives the complete set of policies in force after
	// the step (created, replaced or deleted to match).
	Policies func(Names) []*networkingv1.NetworkPolicy
	// Labels, when set, replaces the labels of namespaces ("x") and pods ("x/a").
	Labels func(Names) map[string]map[string]string
	// Rejected: Manifests must be rejected, by netpolcheck's loader with an
	// error containing this text and by the API server, and nothing changes.
	Rejected string
	// Expect states outcomes a document gives, by logical endpoint names.
	Expect []Outcome
}

// Outcome is a stated connection result.
type Outcome struct {
	From, To string
	Port     matrix.PortProtocol
	Allowed  bool
	Doc      string
	// Via, when set, says the outcome goes through a Service (see
	// services.go); To and Port are the backend pod and its port.
	Via *recipes.Via
}

// Names maps a scenario's logical names to this run's.
type Names struct {
	namespaces map[string]string
	externals  map[string]string
}

// Namespace returns the real name of a logical namespace.
func (n Names) Namespace(logical string) string {
	if real, ok := n.namespaces[logical]; ok {
		return real
	}
	return logical
}

// Endpoint returns the real name of a logical endpoint ("ns/pod" or an external host).
func (n Names) Endpoint(logical string) string {
	if ns, pod, ok := strings.Cut(logical, "/"); ok {
		return n.Namespace(ns) + "/" + pod
	}
	if real, ok := n.externals[logical]; ok {
		return real
	}
	return logical
}

// run is one execution of a scenario.
type run struct {
	env      *Env
	s        *Scenario
	names    Names
	pods     []podRef
	external []matrix.External // every external host, with canonical names
	// unreachable names the external hosts this provider does not have:
	// they stay in the expected tables, and their cells are not probed.
	unreachable map[string]bool
	rec         *reports.Case
}

type podRef struct {
	namespace, name string
	spec            matrix.Pod
}

// Run executes a scenario inside a Ginkgo spec: it fails the spec with the
// expected, observed and diff grids and the explanation of every wrong cell
// when the cluster disagrees with the engine, or with a stated outcome.
func Run(ctx context.Context, env *Env, s *Scenario, suite string) {
	r := &run{env: env, s: s, rec: &reports.Case{ID: s.ID, Name: s.Title, Suite: suite, Labels: s.Labels}}
	// The case, with its steps' tables and mismatches, travels in the JUnit
	// report as a property, as JSON, for `netpolcheck report` and `compare`.
	DeferCleanup(func() { AddReportEntry(reports.JUnitCaseProperty, *r.rec, ReportEntryVisibilityNever) })
	r.setUp(ctx)
	for i := range s.Steps {
		step := &s.Steps[i]
		By(fmt.Sprintf("step %d: %s", i+1, step.Name))
		r.step(ctx, step)
	}
	if r.rec.SubjectNotProbed() {
		GinkgoWriter.Printf("incomplete: none of the case's subject cells could be probed on %s (%d cells not probed)\n", env.Provider, r.rec.NotProbed())
	}
}

func (r *run) setUp(ctx context.Context) {
	env, s := r.env, r.s
	r.names = Names{namespaces: map[string]string{}, externals: map[string]string{}}
	if s.Model != nil {
		r.names = s.Model.names
		pods := s.Model.Pods
		if s.Nodes {
			pods = append(slices.Clone(pods), s.Model.NodeEndpoints(ctx)...)
		}
		for _, p := range pods {
			r.pods = append(r.pods, podRef{namespace: r.names.Namespace(p.Namespace), name: p.Name, spec: p})
		}
	} else {
		suffix := shortHash(env.RunID + "/" + s.ID)
		var real []string
		for _, ns := range s.Namespaces {
			name := truncate(ns.Name, 50) + "-" + suffix
			r.names.namespaces[ns.Name] = name
			real = append(real, name)
			createNamespace(ctx, env, name, ns.Labels)
			DeferCleanup(func(ctx SpecContext) {
				Expect(deleteNamespace(ctx, env, name)).To(Succeed())
			})
		}
		for _, p := range s.Pods {
			ns := r.names.Namespace(p.Namespace)
			obj := PodObject(ns, p, env.Image)
			_, err := env.Client.CoreV1().Pods(ns).Create(ctx, obj, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred(), "creating pod %s/%s", ns, p.Name)
			r.pods = append(r.pods, podRef{namespace: ns, name: p.Name, spec: p})
		}
		_, err := waitPodsRunning(ctx, env.Client, real, len(s.Pods))
		Expect(err).NotTo(HaveOccurred())
		r.createServices(ctx)
	}
	r.unreachable = map[string]bool{}
	for _, x := range s.Externals {
		host, ok := r.externalHost(x)
		if !ok {
			GinkgoWriter.Printf("external host %s (%v) is not available on %s: cells involving it are not probed\n", x.Name, x.IPs, env.Provider)
			host.Name = ExternalName(netip.MustParseAddr(x.IPs[0]))
			r.unreachable[host.Name] = true
		}
		r.names.externals[x.Name] = host.Name
		r.external = append(r.external, matrix.External{Name: host.Name, IPs: x.IPs, Ports: x.Ports})
	}
}

func (r *run) externalHost(x matrix.External) (ExternalHost, bool) {
	for _, ip := range x.IPs {
		for addr, host := range r.env.Externals {
			if addr.String() == ip {
				return host, true
			}
		}
	}
	return ExternalHost{}, false
}

// createNamespace creates a namespace, annotated with the run's ID (see
// DeleteRunObjects).
func createNamespace(ctx context.Context, env *Env, name string, labels map[string]string) {
	obj := namespaceObject(name, labels)
	obj.Annotations = map[string]string{RunAnnotation: env.RunID}
	_, err := env.Client.CoreV1().Namespaces().Create(ctx, obj, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred(), "creating namespace %s", name)
}

// deleteNamespace deletes a namespace (with its pods and policies); a
// namespace already gone is fine.
func deleteNamespace(ctx context.Context, env *Env, name string) error {
	err := env.Client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting namespace %s: %w", name, err)
	}
	return nil
}

func (r *run) step(ctx context.Context, step *Step) {
	started := time.Now()
	r.applyPolicies(ctx, step)
	if step.Labels != nil {
		r.applyLabels(ctx, step.Labels(r.names))
	}
	model, uids := r.observeModel(ctx)
	policies := r.storedPolicies(ctx, model)
	engine, err := matrix.NewEngine(model, policies)
	Expect(err).NotTo(HaveOccurred(), "computing the expected table")
	expected := engine.Table()
	subject, err := reports.SubjectOf(model, policies, expected)
	Expect(err).NotTo(HaveOccurred(), "computing the step's subject cells")
	probed, endpoints, err := reports.Reachable(expected, engine.Endpoints(), func(ep matrix.Endpoint) bool { return !r.unreachable[ep.Name] })
	Expect(err).NotTo(HaveOccurred())
	tr, sources := r.env.attachment.ProbeTransport(r.env.Client, uids)
	runner := &matrix.Runner{Transport: tr, Sources: sources, ProbeTimeout: r.env.ProbeTimeout,
		Convergence: r.env.Convergence, ICMP: true}
	probing := time.Now()
	rep, err := runner.Run(ctx, probed, endpoints)
	Expect(err).NotTo(HaveOccurred(), "probing")
	rec := reports.StepOf(step.Name, rep, engine, reports.Coverage{Expected: expected, Subject: subject})
	rec.EnforcedAfterSeconds = reports.EnforcedAfter(rec, probing.Sub(started))
	r.rec.Steps = append(r.rec.Steps, rec)
	GinkgoWriter.Printf("step %q: %d cells, %d not probed (%d of %d subject cells), %d rounds, %d transport retries, probing %s, step %s\n", step.Name,
		rec.Cells, rec.NotProbed, rec.SubjectNotProbed, rec.Subject, rep.Rounds, rep.TransportRetries, rep.Duration.Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
	if msg := rep.FailureMessage(engine); msg != "" {
		Fail(fmt.Sprintf("step %q: the cluster disagrees with the NetworkPolicy API:\n%s", step.Name, msg))
	}
	for _, o := range step.Expect {
		if o.Via == nil {
			r.checkOutcome(o, engine, expected, rep)
		}
	}
	r.checkViaOutcomes(ctx, step, model, policies, uids)
}

// checkOutcome checks a stated outcome against the engine (its whole
// expected table) and, where it was probed, the cluster.
func (r *run) checkOutcome(o Outcome, engine *matrix.Engine, expected *matrix.Table, rep *matrix.Report) {
	from, to := r.names.Endpoint(o.From), r.names.Endpoint(o.To)
	want, ok := expected.Get(from, to, o.Port)
	if !ok {
		Fail(fmt.Sprintf("the stated outcome %s -> %s %s (%s) is no cell of the expected table", o.From, o.To, o.Port, o.Doc))
	}
	if want != o.Allowed {
		x, _ := engine.Explain(from, to, o.Port)
		Fail(fmt.Sprintf("the engine contradicts the stated outcome %s -> %s %s allowed=%v (%s):\n%s", o.From, o.To, o.Port, o.Allowed, o.Doc, x))
	}
	if _, probed := rep.Expected.Get(from, to, o.Port); !probed {
		GinkgoWriter.Printf("outcome %s -> %s %s not probed here (%s)\n", o.From, o.To, o.Port, r.env.Provider)
		return
	}
	if got, ok := rep.Observed.Get(from, to, o.Port); ok && got != o.Allowed {
		Fail(fmt.Sprintf("stated outcome %s -> %s %s allowed=%v (%s), observed %v", o.From, o.To, o.Port, o.Allowed, o.Doc, got))
	}
}

// storedPolicies lists the policies in force in the model's namespaces.
func (r *run) storedPolicies(ctx context.Context, model *matrix.Model) []*networkingv1.NetworkPolicy {
	names := make([]string, len(model.Namespaces))
	for i, ns := range model.Namespaces {
		names[i] = ns.Name
	}
	policies, err := observe.Policies(ctx, r.env.Client, names)
	Expect(err).NotTo(HaveOccurred(), "reading back the policies")
	return policies
}

// observeModel reads the scenario's namespaces and pods back from the API
// server, with their labels, IPs and container ports as stored.
func (r *run) observeModel(ctx context.Context) (*matrix.Model, map[string]string) {
	model := &matrix.Model{Externals: r.external}
	uids := map[string]string{}
	seen := map[string]bool{}
	for _, p := range r.pods {
		if !seen[p.namespace] {
			seen[p.namespace] = true
			ns, err := observe.Namespace(ctx, r.env.Client, p.namespace)
			Expect(err).NotTo(HaveOccurred())
			model.Namespaces = append(model.Namespaces, ns)
		}
		pod, err := r.env.Client.CoreV1().Pods(p.namespace).Get(ctx, p.name, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(podReady(pod)).To(BeTrue(), "pod %s/%s is not ready", p.namespace, p.name)
		model.Pods = append(model.Pods, observe.Pod(pod))
		uids[matrix.PodName(pod.Namespace, pod.Name)] = string(pod.UID)
	}
	return model, uids
}

// applyLabels replaces the labels of namespaces and pods, and restores them
// after the spec.
func (r *run) applyLabels(ctx context.Context, changes map[string]map[string]string) {
	for _, key := range slices.Sorted(maps.Keys(changes)) {
		labels := changes[key]
		if ns, pod, ok := strings.Cut(key, "/"); ok {
			r.relabelPod(ctx, r.names.Namespace(ns), pod, labels)
		} else {
			r.relabelNamespace(ctx, r.names.Namespace(key), labels)
		}
	}
}
