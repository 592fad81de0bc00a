package local_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/netpolcheck/netpolcheck/cluster/local"
)

// benchPods is how many pods BenchmarkUpAndPodStartup creates at once.
var benchPods = flag.Int("pods", 150, "BenchmarkUpAndPodStartup: pods created at once per iteration")

// BenchmarkUpAndPodStartup measures, with cached Kubernetes binaries, the
// time from `local up` to a ready 2-node cluster, and the latency from the
// create call of each of -pods pods (created at once, spread by the
// scheduler) to the pod being bound to a node and to it being Running and
// Ready with an IP, as a watch sees it.
//
//	go test ./cluster/local -run '^$' -bench UpAndPodStartup -benchtime 3x -pods 150
func BenchmarkUpAndPodStartup(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root: the local cluster is made of network namespaces")
	}
	bin := buildBinaries(b)
	if *benchPods <= 0 {
		b.Fatalf("-pods %d: want at least one pod", *benchPods)
	}
	var ups, bound, ready []time.Duration
	for i := range b.N {
		name := fmt.Sprintf("b%d-%d", os.Getpid(), i)
		stateDir := filepath.Join(b.TempDir(), "state")
		started := time.Now()
		c, err := local.Up(context.Background(), local.Options{Name: name, Nodes: 2, StateDir: stateDir, BinDir: bin, Kube: localKube()})
		if err != nil {
			b.Fatal(err)
		}
		ups = append(ups, time.Since(started))
		latencies, err := startPods(c, *benchPods)
		if downErr := local.Down(context.Background(), name, stateDir); downErr != nil {
			b.Fatal(downErr)
		}
		if err != nil {
			b.Fatal(err)
		}
		for _, l := range latencies {
			bound = append(bound, l.bound)
			ready = append(ready, l.ready)
		}
	}
	slices.Sort(ups)
	b.ReportMetric(ups[len(ups)/2].Seconds(), "up-p50-s")
	b.ReportMetric(ups[len(ups)-1].Seconds(), "up-max-s")
	reportPercentiles(b, "bound", bound)
	reportPercentiles(b, "pod", ready)
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

// startPods creates n probe pods at once and returns each one's latencies
// from its create call.
func startPods(c *local.Cluster, n int) ([]podLatency, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg, err := c.RESTConfig()
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 200, 200 // measure the cluster, not client-side throttling
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	ns := "bench"
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	// A retry watcher resumes where a watch the server closed left off.
	list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	w, err := watchtools.NewRetryWatcherWithContext(ctx, list.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return client.CoreV1().Pods(ns).Watch(ctx, o)
		},
	})
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	var mu sync.Mutex
	created := map[string]time.Time{}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			pod := probePod(ns, fmt.Sprintf("p%03d", i), "")
			mu.Lock()
			created[pod.Name] = time.Now()
			mu.Unlock()
			if _, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	bound := map[string]time.Duration{}
	ready := map[string]time.Duration{}
	for len(ready) < n {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%d of %d pods ready: %w", len(ready), n, ctx.Err())
		case ev, ok := <-w.ResultChan():
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
			if _, ok := bound[pod.Name]; !ok && pod.Spec.NodeName != "" {
				bound[pod.Name] = seen.Sub(created[pod.Name])
			}
			if _, ok := ready[pod.Name]; !ok && pod.Status.PodIP != "" && isReady(pod) {
				ready[pod.Name] = seen.Sub(created[pod.Name])
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
