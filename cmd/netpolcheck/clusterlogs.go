package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/netpolcheck/netpolcheck/suites/framework"
)

// saveClusterLogs writes the logs of the cluster's own pods (those of every
// namespace that no run created: the CNI's agents, DNS) into dir, one file
// per container, NAMESPACE_POD_CONTAINER.log, with the previous instance's
// log beside it (.previous.log) when the container restarted. It is what
// to read when a CNI fails a case; a pod's log that cannot be read is
// skipped and counted in the error.
func saveClusterLogs(ctx context.Context, client kubernetes.Interface, dir string) (int, error) {
	namespaces, err := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, fmt.Errorf("listing namespaces: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("creating %s: %w", dir, err)
	}
	saved := 0
	var errs []error
	for _, ns := range namespaces.Items {
		if _, ok := ns.Annotations[framework.RunAnnotation]; ok {
			continue
		}
		pods, err := client.CoreV1().Pods(ns.Name).List(ctx, metav1.ListOptions{})
		if err != nil {
			errs = append(errs, fmt.Errorf("listing the pods of %s: %w", ns.Name, err))
			continue
		}
		for _, pod := range pods.Items {
			for _, st := range append(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses...) {
				base := filepath.Join(dir, fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, st.Name))
				if err := saveContainerLog(ctx, client, &pod, st.Name, false, base+".log"); err != nil {
					errs = append(errs, err)
					continue
				}
				saved++
				if st.RestartCount > 0 {
					if err := saveContainerLog(ctx, client, &pod, st.Name, true, base+".previous.log"); err != nil {
						errs = append(errs, err)
					}
				}
			}
		}
	}
	if len(errs) > 0 {
		return saved, fmt.Errorf("%d container logs not saved: %w", len(errs), errors.Join(errs...))
	}
	return saved, nil
}

func saveContainerLog(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod, container string, previous bool, path string) error {
	stream, err := client.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{Container: container, Previous: previous}).Stream(ctx)
	if err != nil {
		return fmt.Errorf("log of %s/%s %s: %w", pod.Namespace, pod.Name, container, err)
	}
	defer stream.Close()
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("log of %s/%s %s: %w", pod.Namespace, pod.Name, container, err)
	}
	if _, err := io.Copy(f, stream); err != nil {
		f.Close()
		return fmt.Errorf("log of %s/%s %s: %w", pod.Namespace, pod.Name, container, err)
	}
	return f.Close()
}
