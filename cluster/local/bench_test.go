package local_test

import (
	"context"
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

// BenchmarkUpAndPodStartup measures, with cached Kubernetes binaries, the
// time from `local up` to a ready 2-node cluster, and the latency from the
// create call of each of 50 pods (created at once, spread by the scheduler)
// to the pod being Running and Ready with an IP, as a watch sees it.
//
//	go test ./cluster/local -run '^$' -bench UpAndPodStartup -benchtime 3x
func BenchmarkUpAndPodStartup(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root: the local cluster is made of network namespaces")
	}
	bin := buildBinaries(b)
	var ups, pods []time.Duration
	for i := range b.N {
		name := fmt.Sprintf("b%d-%d", os.Getpid(), i)
		stateDir := filepath.Join(b.TempDir(), "state")
		started := time.Now()
		c, err := local.Up(context.Background(), local.Options{Name: name, Nodes: 2, StateDir: stateDir, BinDir: bin, Kube: localKube()})
		if err != nil {
			b.Fatal(err)
		}
		ups = append(ups, time.Since(started))
		latencies, err := startPods(c, 50)
		if downErr := local.Down(context.Background(), name, stateDir); downErr != nil {
			b.Fatal(downErr)
		}
		if err != nil {
			b.Fatal(err)
		}
		pods = append(pods, latencies...)
	}
	slices.Sort(ups)
	slices.Sort(pods)
	b.ReportMetric(ups[len(ups)/2].Seconds(), "up-p50-s")
	b.ReportMetric(ups[len(ups)-1].Seconds(), "up-max-s")
	b.ReportMetric(pods[len(pods)/2].Seconds(), "pod-p50-s")
	b.ReportMetric(pods[min(len(pods)-1, len(pods)*99/100)].Seconds(), "pod-p99-s")
	b.ReportMetric(pods[len(pods)-1].Seconds(), "pod-max-s")
}

// startPods creates n probe pods at once and returns each one's latency
// from its create call to Running and Ready.
func startPods(c *local.Cluster, n int) ([]time.Duration, error) {
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
			pod := probePod(ns, fmt.Sprintf("p%02d", i), "")
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
			if !isPod || ev.Type == watch.Deleted || pod.Status.PodIP == "" {
				continue
			}
			for _, cond := range pod.Status.Conditions {
				if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
					if _, seen := ready[pod.Name]; !seen {
						mu.Lock()
						ready[pod.Name] = time.Since(created[pod.Name])
						mu.Unlock()
					}
				}
			}
		}
	}
	out := make([]time.Duration, 0, n)
	for _, d := range ready {
		out = append(out, d)
	}
	return out, nil
}
