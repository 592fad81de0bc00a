package framework

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// RunAnnotation is the annotation that marks every namespace a run creates
// with the run's ID (an annotation, not a label: no namespace selector of a
// case can see it).
const RunAnnotation = "netpolcheck.io/run"

// DNSPodPrefix is the name prefix of the DNS-like pods the run's probe
// models create in kube-system.
func DNSPodPrefix(runID string) string { return "dns-" + runID + "-" }

// DeleteRunObjects deletes whatever the run runID left behind (after an
// interrupted run): every namespace annotated with its ID, with their pods,
// services and policies, and its DNS-like pods in kube-system; and waits up
// to timeout for them, and for those being deleted already, to be gone. It
// returns what it deleted itself.
func DeleteRunObjects(ctx context.Context, client kubernetes.Interface, runID string, timeout time.Duration) ([]string, error) {
	namespaces, err := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing namespaces: %w", err)
	}
	pods, err := client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing the pods of kube-system: %w", err)
	}
	var deleted, gone []string
	var errs []error
	var waitFor []func(context.Context) error
	for _, ns := range namespaces.Items {
		if ns.Annotations[RunAnnotation] != runID {
			continue
		}
		name := ns.Name
		gone = append(gone, "namespace/"+name)
		waitFor = append(waitFor, func(ctx context.Context) error {
			_, err := client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
			return err
		})
		if ns.DeletionTimestamp != nil {
			continue
		}
		deleted = append(deleted, "namespace/"+name)
		if err := client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting namespace %s: %w", name, err))
		}
	}
	for _, pod := range pods.Items {
		if !strings.HasPrefix(pod.Name, DNSPodPrefix(runID)) {
			continue
		}
		name := pod.Name
		gone = append(gone, "kube-system/pod/"+name)
		waitFor = append(waitFor, func(ctx context.Context) error {
			_, err := client.CoreV1().Pods("kube-system").Get(ctx, name, metav1.GetOptions{})
			return err
		})
		if pod.DeletionTimestamp != nil {
			continue
		}
		deleted = append(deleted, "kube-system/pod/"+name)
		if err := client.CoreV1().Pods("kube-system").Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting pod kube-system/%s: %w", name, err))
		}
	}
	for i, get := range waitFor {
		err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
			err := get(ctx)
			if apierrors.IsNotFound(err) {
				return true, nil
			}
			return false, err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("waiting for %s to be gone: %w", gone[i], err))
		}
	}
	return deleted, errors.Join(errs...)
}
