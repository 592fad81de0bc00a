// Package enforcer is the reference CNI's NetworkPolicy enforcer: a per-node
// controller that watches Pods, Namespaces and NetworkPolicies through
// client-go informers, compiles them into verdict data for the pods of its
// node (package compiler), and programs that data into nftables (package
// nft), one atomic transaction per sync.
//
// Syncs are coalesced: any number of events that arrive while a sync runs
// lead to one more sync. The first sync after start waits for every informer
// to be synced and replaces the whole table in one transaction; until it
// commits, the rules of a previous run stay in force, so a restart never
// opens an isolated pod. Later syncs send only the set elements that changed.
// Every Options.Resync the whole table is rewritten from the last programmed
// ruleset, which restores it within that bound when something outside the
// enforcer flushed or deleted it.
//
// The enforcer fails closed: when a policy cannot be compiled at all (its
// podSelector does not parse, which the API server never lets through), the
// ruleset without it could open the pods it isolates, so the enforcer keeps
// programming the previous ruleset, and reports each such policy: an error in
// the log, the gauge netpolcheck_enforcer_unenforceable_policies, and a
// Warning event (reason PolicyNotEnforced) on the NetworkPolicy.
//
// Behaviour profiles exist to test the harness itself: ProfileNone enforces
// nothing (like a CNI without NetworkPolicy support), ProfileDelay enforces
// correctly but only after a fixed delay.
package enforcer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/knftables"

	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer/compiler"
	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer/nft"
)

// Profile selects how the enforcer behaves.
type Profile string

// The behaviour profiles.
const (
	// ProfileCorrect enforces the NetworkPolicy API exactly. The default.
	ProfileCorrect Profile = "correct"
	// ProfileNone enforces nothing: every pod stays open, as with a CNI
	// that ignores NetworkPolicy (Flannel).
	ProfileNone Profile = "none"
	// ProfileDelay enforces correctly, but programs a change no sooner than
	// Options.Delay after it happened (changes that follow within the delay
	// are programmed with it).
	ProfileDelay Profile = "delay"
)

// ParseProfile returns the profile named s.
func ParseProfile(s string) (Profile, error) {
	switch p := Profile(s); p {
	case ProfileCorrect, ProfileNone, ProfileDelay:
		return p, nil
	}
	return "", fmt.Errorf("unknown profile %q: want correct, none or delay", s)
}

// Options configure an Enforcer.
type Options struct {
	// Node is the name of the node whose pods are enforced.
	Node string
	// Profile is the behaviour; empty means ProfileCorrect.
	Profile Profile
	// Delay is how long ProfileDelay holds back each change.
	Delay time.Duration
	// RetryAfter is the first wait after a failed sync; it doubles with each
	// further failure, up to a minute. Zero means one second.
	RetryAfter time.Duration
	// Logger receives a line per sync; nil discards them.
	Logger *slog.Logger
	// Resync is how often the whole table is rewritten, repairing changes
	// made from outside; zero means never.
	Resync time.Duration
	// OnCommit, when set, is called after every sync that succeeded.
	OnCommit func(Commit)
}

// Commit says what one successful sync did and how long it took.
type Commit struct {
	// Seq numbers the syncs of this enforcer, from 1.
	Seq int
	// Input is the snapshot the sync compiled; its objects are shared with
	// the informer caches and must not be modified.
	Input compiler.Input
	// Programmed is the result of the nftables transaction.
	Programmed nft.Result
	// Compile is the time spent computing the ruleset; Total the whole sync.
	Compile, Total time.Duration
	// Events counts the informer events this sync took in, and EventLatency
	// is the time from the oldest of them to the committed transaction (zero
	// when the sync was not caused by an event).
	Events       int
	EventLatency time.Duration
	// Unenforceable lists the policies that could not be compiled. When it is
	// not empty, Programmed is the previous ruleset, kept in force.
	Unenforceable []*compiler.UnenforceableError
}

// Enforcer is the controller of one node.
type Enforcer struct {
	client     kubernetes.Interface
	programmer *nft.Programmer
	opts       Options
	log        *slog.Logger
	metrics    *Metrics

	// wake has room for one signal: events that arrive while a sync is
	// pending fold into it.
	wake chan struct{}

	mu            sync.Mutex
	pendingSince  time.Time
	pendingEvents int

	// programmed is the last ruleset this enforcer programmed, nil before
	// its first one; reported holds the message of every unenforceable
	// policy an event was posted for, by namespace/name.
	programmed *compiler.Ruleset
	reported   map[string]string
}

// New returns an enforcer that reads the cluster through client and programs
// the table behind nftables.
func New(client kubernetes.Interface, nftables knftables.Interface, opts Options) (*Enforcer, error) {
	if opts.Node == "" {
		return nil, errors.New("enforcer: the node name is required")
	}
	if opts.Profile == "" {
		opts.Profile = ProfileCorrect
	}
	if _, err := ParseProfile(string(opts.Profile)); err != nil {
		return nil, fmt.Errorf("enforcer: %w", err)
	}
	if opts.Profile == ProfileDelay && opts.Delay <= 0 {
		return nil, errors.New("enforcer: the delay profile needs a positive delay")
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Enforcer{
		client:     client,
		programmer: nft.NewProgrammer(nftables),
		opts:       opts,
		log:        log.With("node", opts.Node, "profile", string(opts.Profile)),
		metrics:    NewMetrics(),
		wake:       make(chan struct{}, 1),
		reported:   map[string]string{},
	}, nil
}

// Metrics returns the enforcer's metrics.
func (e *Enforcer) Metrics() *Metrics { return e.metrics }

// listers reads the informer caches.
type listers struct {
	namespaces corelisters.NamespaceLister
	pods       corelisters.PodLister
	policies   networkinglisters.NetworkPolicyLister
}

// Run watches the cluster and keeps the node's table in sync until ctx ends.
// It returns an error only when the informers cannot start.
func (e *Enforcer) Run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactory(e.client, 0)
	podInformer := factory.Core().V1().Pods()
	nsInformer := factory.Core().V1().Namespaces()
	npInformer := factory.Networking().V1().NetworkPolicies()
	handlers := []struct {
		informer cache.SharedIndexInformer
		relevant func(old, new any) bool
	}{
		{podInformer.Informer(), podChanged},
		{nsInformer.Informer(), namespaceChanged},
		{npInformer.Informer(), policyChanged},
	}
	for _, h := range handlers {
		relevant := h.relevant
		if _, err := h.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { e.changed() },
			UpdateFunc: func(old, new any) { e.changedIf(relevant(old, new)) },
			DeleteFunc: func(any) { e.changed() },
		}); err != nil {
			return fmt.Errorf("registering event handler: %w", err)
		}
	}
	l := listers{namespaces: nsInformer.Lister(), pods: podInformer.Lister(), policies: npInformer.Lister()}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	e.log.Info("waiting for informer caches")
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("informer cache for %v did not sync", typ)
		}
	}
	e.loop(ctx, l)
	return nil
}

// changed records an event and wakes the sync loop.
func (e *Enforcer) changed() {
	e.mu.Lock()
	if e.pendingEvents == 0 {
		e.pendingSince = time.Now()
	}
	e.pendingEvents++
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (e *Enforcer) changedIf(relevant bool) {
	if relevant {
		e.changed()
	}
}

// takePending returns and clears the pending events. The informer has
// stored every object of an event before calling its handler, so a snapshot
// listed after this call includes all of them.
func (e *Enforcer) takePending() (since time.Time, events int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	since, events = e.pendingSince, e.pendingEvents
	e.pendingSince, e.pendingEvents = time.Time{}, 0
	return since, events
}

func (e *Enforcer) loop(ctx context.Context, l listers) {
	seq := 0
	retry := e.opts.RetryAfter
	var resync <-chan time.Time
	if e.opts.Resync > 0 {
		ticker := time.NewTicker(e.opts.Resync)
		defer ticker.Stop()
		resync = ticker.C
	}
	for {
		if e.opts.Profile == ProfileDelay && !sleep(ctx, e.untilDelayed()) {
			return
		}
		seq++
		if err := e.sync(ctx, l, seq); err != nil {
			if ctx.Err() != nil {
				return
			}
			e.metrics.observeError()
			e.log.Error("sync failed; retrying with a full sync", "seq", seq, "retryIn", retry, "err", err)
			if !sleep(ctx, retry) {
				return
			}
			retry = min(2*retry, time.Minute)
			continue
		}
		retry = e.opts.RetryAfter
		if !e.awaitEvent(ctx, resync) {
			return
		}
	}
}

// awaitEvent waits until an event is pending, or a resync is due (the next
// sync is then a full one), or ctx ends (false). A wake signal whose event an
// earlier sync already took in is skipped.
func (e *Enforcer) awaitEvent(ctx context.Context, resync <-chan time.Time) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-resync:
			e.programmer.Reset()
			return true
		case <-e.wake:
		}
		e.mu.Lock()
		pending := e.pendingEvents > 0
		e.mu.Unlock()
		if pending {
			return true
		}
	}
}

// untilDelayed returns how long ProfileDelay still waits: until the oldest
// pending event is Delay old.
func (e *Enforcer) untilDelayed() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.pendingEvents == 0 {
		return e.opts.Delay
	}
	return time.Until(e.pendingSince.Add(e.opts.Delay))
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (e *Enforcer) sync(ctx context.Context, l listers, seq int) error {
	start := time.Now()
	since, events := e.takePending()
	in, err := snapshot(l, e.opts.Node)
	if err != nil {
		e.restorePending(since, events)
		return err
	}
	desired := compiler.NewRuleset()
	var problems error
	if e.opts.Profile != ProfileNone {
		desired, problems = compiler.Compile(in)
		if problems != nil {
			e.log.Warn("some policies could not be compiled in full", "err", problems)
		}
	}
	unenforceable := compiler.Unenforceable(problems)
	e.report(ctx, in.Policies, unenforceable)
	if len(unenforceable) > 0 {
		if e.programmed == nil {
			// Nothing programmed yet: whatever the table holds (the rules
			// of a previous run, if any) stays as it is.
			e.log.Error("policies cannot be enforced; leaving the table as it is until they are fixed or deleted", "seq", seq, "unenforceable", len(unenforceable))
			return nil
		}
		e.log.Error("policies cannot be enforced; keeping the previous ruleset until they are fixed or deleted", "seq", seq, "unenforceable", len(unenforceable))
		desired = e.programmed
	}
	compiled := time.Now()
	res, err := e.programmer.Sync(ctx, desired)
	if err != nil {
		e.restorePending(since, events)
		return err
	}
	e.programmed = desired
	done := time.Now()
	c := Commit{
		Seq: seq, Input: in, Programmed: res,
		Compile: compiled.Sub(start), Total: done.Sub(start),
		Events: events, Unenforceable: unenforceable,
	}
	if events > 0 {
		c.EventLatency = done.Sub(since)
	}
	e.metrics.observe(c, problems != nil)
	level := slog.LevelInfo
	if !res.Full && res.Added == 0 && res.Removed == 0 {
		level = slog.LevelDebug
	}
	e.log.Log(ctx, level, "synced",
		"seq", seq, "full", res.Full, "added", res.Added, "removed", res.Removed, "elements", res.Elements,
		"pods", len(in.Pods), "policies", len(in.Policies),
		"events", events, "eventToCommit", c.EventLatency, "compile", c.Compile, "nft", res.Duration, "total", c.Total)
	if e.opts.OnCommit != nil {
		e.opts.OnCommit(c)
	}
	return nil
}

// restorePending puts back the events of a failed sync, so that the latency
// of the retry counts from the oldest of them.
func (e *Enforcer) restorePending(since time.Time, events int) {
	if events == 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.pendingEvents == 0 || since.Before(e.pendingSince) {
		e.pendingSince = since
	}
	e.pendingEvents += events
}

func snapshot(l listers, node string) (compiler.Input, error) {
	in := compiler.Input{Node: node}
	var err error
	if in.Namespaces, err = l.namespaces.List(labels.Everything()); err != nil {
		return in, fmt.Errorf("listing namespaces: %w", err)
	}
	if in.Pods, err = l.pods.List(labels.Everything()); err != nil {
		return in, fmt.Errorf("listing pods: %w", err)
	}
	if in.Policies, err = l.policies.List(labels.Everything()); err != nil {
		return in, fmt.Errorf("listing network policies: %w", err)
	}
	return in, nil
}

// podChanged reports whether a pod update can change any verdict: its labels,
// node, addresses, host networking or whether it has finished. (Container
// ports cannot change after creation.)
func podChanged(old, new any) bool {
	o, ok1 := old.(*corev1.Pod)
	n, ok2 := new.(*corev1.Pod)
	if !ok1 || !ok2 {
		return true
	}
	finished := func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
	}
	return !labels.Equals(o.Labels, n.Labels) ||
		o.Spec.NodeName != n.Spec.NodeName ||
		o.Spec.HostNetwork != n.Spec.HostNetwork ||
		finished(o) != finished(n) ||
		o.Status.PodIP != n.Status.PodIP ||
		!slices.Equal(o.Status.PodIPs, n.Status.PodIPs)
}

func namespaceChanged(old, new any) bool {
	o, ok1 := old.(*corev1.Namespace)
	n, ok2 := new.(*corev1.Namespace)
	return !ok1 || !ok2 || !labels.Equals(o.Labels, n.Labels)
}

func policyChanged(old, new any) bool {
	o, ok1 := old.(*networkingv1.NetworkPolicy)
	n, ok2 := new.(*networkingv1.NetworkPolicy)
	return !ok1 || !ok2 || !apiequality.Semantic.DeepEqual(o.Spec, n.Spec)
}
