package local_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	"github.com/netpolcheck/netpolcheck/cluster/local"
)

// The benchmark's pods: -pods created at once (the burst, which saturates the
// cluster), then, while those run, -latency-pods created one every
// -latency-interval.
var (
	benchPods       = flag.Int("pods", 150, "BenchmarkUpAndPodStartup: pods created at once per iteration")
	latencyPods     = flag.Int("latency-pods", 30, "BenchmarkUpAndPodStartup: pods created one at a time once the burst's run (0: none)")
	latencyInterval = flag.Duration("latency-interval", 200*time.Millisecond, "BenchmarkUpAndPodStartup: time between two latency pods' creates")
)

// BenchmarkUpAndPodStartup measures, with cached Kubernetes binaries, the
// time from `local up` to a ready 2-node cluster, and the latency from each
// pod's create call to the pod being bound to a node and to it being Running
// and Ready with an IP, as a watch sees it, for two kinds of pods, as
// Kubernetes' own scalability tests tell saturation from latency:
//
//   - the burst (metrics bound-*, pod-*): -pods pods created at once. Their
//     latencies are mostly queueing: every component works through all of
//     them on the machine's cores;
//
//   - latency pods (latency-bound-*, latency-pod-*): with the burst's pods
//     running, -latency-pods pods created one every -latency-interval, the
//     startup latency of a pod in a cluster that runs -pods pods.
//
//     go test ./cluster/local -run '^$' -bench UpAndPodStartup -benchtime 3x -pods 150
func BenchmarkUpAndPodStartup(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root: the local cluster is made of network namespaces")
	}
	bin := buildBinaries(b)
	if *benchPods <= 0 {
		b.Fatalf("-pods %d: want at least one pod", *benchPods)
	}
	var ups, bound, ready, latencyBound, latencyReady []time.Duration
	for i := range b.N {
		name := fmt.Sprintf("b%d-%d", os.Getpid(), i)
		stateDir := filepath.Join(b.TempDir(), "state")
		started := time.Now()
		c, err := local.Up(context.Background(), local.Options{Name: name, Nodes: 2, StateDir: stateDir, BinDir: bin, Kube: localKube()})
		if err != nil {
			b.Fatal(err)
		}
		ups = append(ups, time.Since(started))
		burst, steady, err := startPods(c, *benchPods, *latencyPods, *latencyInterval)
		if downErr := local.Down(context.Background(), name, stateDir); downErr != nil {
			b.Fatal(downErr)
		}
		if err != nil {
			b.Fatal(err)
		}
		for _, l := range burst {
			bound = append(bound, l.bound)
			ready = append(ready, l.ready)
		}
		for _, l := range steady {
			latencyBound = append(latencyBound, l.bound)
			latencyReady = append(latencyReady, l.ready)
		}
	}
	slices.Sort(ups)
	b.ReportMetric(ups[len(ups)/2].Seconds(), "up-p50-s")
	b.ReportMetric(ups[len(ups)-1].Seconds(), "up-max-s")
	reportPercentiles(b, "bound", bound)
	reportPercentiles(b, "pod", ready)
	if len(latencyReady) > 0 {
		reportPercentiles(b, "latency-bound", latencyBound)
		reportPercentiles(b, "latency-pod", latencyReady)
	}
}

// reportPercentiles reports the p50, p99 and max of durations, in seconds,
// as the metrics NAME-p50-s, NAME-p99-s and NAME-max-s.
func reportPercentiles(b *testing.B, name string, durations []time.Duration) {
	slices.Sort(durations)
	n := len(durations)
	b.ReportMetric(durations[n/2].Seconds(), name+"-p50-s")
	b.ReportMetric(durations[min(n-1, n*99/100)].Seconds(), name+"-p99-s")
	b.ReportMetric(durations[n-1].Seconds(), name+"-max-s")
}

// podLatency is how long after its create call a pod was first seen bound
// to a node, and Running and Ready with an IP.
type podLatency struct{ bound, ready time.Duration }

// startPods creates n probe pods at once, then, once they run, m more one
// every interval, and returns each one's latencies from its create call.
func startPods(c *local.Cluster, n, m int, interval time.Duration) (burst, steady []podLatency, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute+time.Duration(m)*interval)
	defer cancel()
	cfg, err := c.RESTConfig()
	if err != nil {
		return nil, nil, err
	}
	cfg.QPS, cfg.Burst = 200, 200 // measure the cluster, not client-side throttling
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	ns := "bench"
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return nil, nil, err
	}
	events, err := watchPods(ctx, &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return client.CoreV1().Pods(ns).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return client.CoreV1().Pods(ns).Watch(ctx, o)
		},
	})
	if err != nil {
		return nil, nil, err
	}
	pods := client.CoreV1().Pods(ns)
	if burst, err = measureStartup(ctx, pods, events, n, 0, func(i int) *corev1.Pod {
		return probePod(ns, fmt.Sprintf("p%03d", i), "")
	}); err != nil || m == 0 {
		return burst, nil, err
	}
	steady, err = measureStartup(ctx, pods, events, m, interval, func(i int) *corev1.Pod {
		return probePod(ns, fmt.Sprintf("l%03d", i), "")
	})
	return burst, steady, err
}

// watchPods lists and watches pods with lw until ctx ends, as an informer
// does, and sends every change as an event. When the server closes the watch
// (the API server closes a watcher that falls behind a burst of events), it
// watches again at once from where it left off.
func watchPods(ctx context.Context, lw cache.ListerWatcher) (<-chan watch.Event, error) {
	events := make(chan watch.Event)
	send := func(typ watch.EventType, obj any) {
		if o, ok := obj.(runtime.Object); ok {
			select {
			case events <- watch.Event{Type: typ, Object: o}:
			case <-ctx.Done():
			}
		}
	}
	informer := cache.NewSharedIndexInformer(lw, &corev1.Pod{}, 0, cache.Indexers{})
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { send(watch.Added, obj) },
		UpdateFunc: func(_, obj any) { send(watch.Modified, obj) },
		DeleteFunc: func(obj any) { send(watch.Deleted, obj) },
	}); err != nil {
		return nil, fmt.Errorf("watching pods: %w", err)
	}
	go informer.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		return nil, fmt.Errorf("listing pods: %w", ctx.Err())
	}
	return events, nil
}

// measureStartup creates n pods (newPod(0) to newPod(n-1)), at once or one
// every interval, and returns each one's latencies from its create call to
// the first event of events that shows it bound, and Running and Ready with
// an IP; events of other pods are ignored. It reads events while the
// creates run: a watch left unread stalls.
func measureStartup(ctx context.Context, pods corev1client.PodInterface, events <-chan watch.Event, n int, interval time.Duration, newPod func(int) *corev1.Pod) ([]podLatency, error) {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx) // ends the creates still running on an early return
	defer cancel()
	var mu sync.Mutex
	created := map[string]time.Time{}
	createdAt := func(name string) (time.Time, bool) {
		mu.Lock()
		defer mu.Unlock()
		t, ok := created[name]
		return t, ok
	}
	errs := make(chan error, n)
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			select {
			case <-time.After(time.Until(start.Add(time.Duration(i) * interval))):
			case <-ctx.Done():
				return
			}
			pod := newPod(i)
			mu.Lock()
			created[pod.Name] = time.Now()
			mu.Unlock()
			if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				errs <- fmt.Errorf("creating pod %s: %w", pod.Name, err)
			}
		})
	}
	bound := map[string]time.Duration{}
	ready := map[string]time.Duration{}
	for len(ready) < n {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%d of %d pods ready: %w", len(ready), n, ctx.Err())
		case err := <-errs:
			return nil, err
		case ev, ok := <-events:
			if !ok {
				return nil, fmt.Errorf("the watch ended with %d of %d pods ready", len(ready), n)
			}
			if ev.Type == watch.Error {
				return nil, fmt.Errorf("watching pods: %v", apierrors.FromObject(ev.Object))
			}
			pod, isPod := ev.Object.(*corev1.Pod)
			if !isPod || ev.Type == watch.Deleted {
				continue
			}
			seen := time.Now()
			at, ours := createdAt(pod.Name)
			if !ours {
				continue
			}
			if _, ok := bound[pod.Name]; !ok && pod.Spec.NodeName != "" {
				bound[pod.Name] = seen.Sub(at)
			}
			if _, ok := ready[pod.Name]; !ok && pod.Status.PodIP != "" && isReady(pod) {
				ready[pod.Name] = seen.Sub(at)
			}
		}
	}
	out := make([]podLatency, 0, n)
	for name, d := range ready {
		out = append(out, podLatency{bound: bound[name], ready: d})
	}
	return out, nil
}

func isReady(pod *corev1.Pod) bool {
	for _, cond := range pod.Status.Conditions {
		if cond.Type == corev1.PodReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// TestMeasureStartupReadsEventsWhileCreating checks that the benchmark reads
// its watch while it creates the pods. A watch that is not read while events
// pile up stalls (the API server closes a watcher that falls behind, and the
// retry watcher reopens it a second later), which adds that stall to every
// latency measured. Here each create waits until its events are read.
func TestMeasureStartupReadsEventsWhileCreating(t *testing.T) {
	const n = 20
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client := fake.NewClientset()
	events := make(chan watch.Event) // unbuffered: a send waits for the reader
	client.PrependReactor("create", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		pod := action.(k8stesting.CreateAction).GetObject().(*corev1.Pod).DeepCopy()
		running := pod.DeepCopy()
		running.Spec.NodeName = "node1"
		running.Status.PodIP = "10.244.1.2"
		running.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		for _, ev := range []watch.Event{{Type: watch.Added, Object: pod}, {Type: watch.Modified, Object: running}} {
			select {
			case events <- ev:
			case <-ctx.Done():
				return true, nil, ctx.Err()
			}
		}
		return false, nil, nil
	})
	latencies, err := measureStartup(ctx, client.CoreV1().Pods("bench"), events, n, 0, func(i int) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%03d", i), Namespace: "bench"}}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(latencies) != n {
		t.Fatalf("%d latencies, want %d", len(latencies), n)
	}
	for _, l := range latencies {
		if l.bound <= 0 || l.ready < l.bound {
			t.Errorf("latencies %+v: want 0 < bound <= ready", l)
		}
	}
}

// TestWatchPodsResumesAtOnce checks that the benchmark's watch, closed by
// the server, resumes at once: a retry watcher waits a second first, which
// added that second to the latencies of the pods whose events came after.
func TestWatchPodsResumesAtOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p000", Namespace: "bench", ResourceVersion: "2"}}
	running := pod.DeepCopy()
	running.ResourceVersion = "3"
	running.Spec.NodeName = "node1"
	var mu sync.Mutex
	var closed time.Time
	watches := 0
	lw := &cache.ListWatch{
		ListWithContextFunc: func(context.Context, metav1.ListOptions) (runtime.Object, error) {
			return &corev1.PodList{ListMeta: metav1.ListMeta{ResourceVersion: "1"}}, nil
		},
		WatchFuncWithContext: func(_ context.Context, o metav1.ListOptions) (watch.Interface, error) {
			mu.Lock()
			defer mu.Unlock()
			watches++
			w := watch.NewFakeWithChanSize(2, false)
			switch watches {
			case 1: // the (empty) initial list, one event, then the server closes the watch
				if o.SendInitialEvents != nil && *o.SendInitialEvents {
					w.Action(watch.Bookmark, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "1",
						Annotations: map[string]string{metav1.InitialEventsAnnotationKey: "true"}}})
				}
				w.Add(pod)
				go func() {
					time.Sleep(100 * time.Millisecond)
					mu.Lock()
					closed = time.Now()
					mu.Unlock()
					w.Stop()
				}()
			case 2:
				w.Modify(running)
			}
			return w, nil
		},
	}
	events, err := watchPods(ctx, lw)
	if err != nil {
		t.Fatal(err)
	}
	for want := range 2 {
		select {
		case ev := <-events:
			if got := ev.Object.(*corev1.Pod).ResourceVersion; got != strconv.Itoa(want+2) {
				t.Fatalf("event %d: resource version %s, want %d", want, got, want+2)
			}
		case <-ctx.Done():
			t.Fatalf("event %d: %v", want, ctx.Err())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if took := time.Since(closed); took > 500*time.Millisecond {
		t.Errorf("the event after the watch closed came %s later, want at once", took.Round(time.Millisecond))
	}
}

// TestMeasureStartupSpacesCreates checks the latency pods' measure: creates
// one every interval, and events of pods it did not create (the burst's,
// still running) ignored.
func TestMeasureStartupSpacesCreates(t *testing.T) {
	const n, interval = 4, 50 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client := fake.NewClientset()
	events := make(chan watch.Event, 4*n)
	var mu sync.Mutex
	var creates []time.Time
	client.PrependReactor("create", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		creates = append(creates, time.Now())
		mu.Unlock()
		pod := action.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		other := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "burst-" + pod.Name, Namespace: "bench"},
			Spec: corev1.PodSpec{NodeName: "node1"}, Status: corev1.PodStatus{PodIP: "10.244.1.3",
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}}
		running := pod.DeepCopy()
		running.Spec.NodeName, running.Status = "node1", other.Status
		events <- watch.Event{Type: watch.Modified, Object: other}
		events <- watch.Event{Type: watch.Modified, Object: running}
		return false, nil, nil
	})
	latencies, err := measureStartup(ctx, client.CoreV1().Pods("bench"), events, n, interval, func(i int) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("l%03d", i), Namespace: "bench"}}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(latencies) != n {
		t.Fatalf("%d latencies, want %d (events of other pods counted?)", len(latencies), n)
	}
	mu.Lock()
	defer mu.Unlock()
	slices.SortFunc(creates, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(creates); i++ {
		if gap := creates[i].Sub(creates[i-1]); gap < interval*8/10 {
			t.Errorf("creates %d and %d %v apart, want about %v", i-1, i, gap, interval)
		}
	}
}
