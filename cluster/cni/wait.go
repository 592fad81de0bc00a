package cni

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// waitInterval is how often Wait polls.
const waitInterval = 2 * time.Second

// maxPodsReported bounds the pods a timeout error describes per workload.
const maxPodsReported = 3

// Workload is a DaemonSet or Deployment an installer waits for.
type Workload struct {
	Kind      string // DaemonSet or Deployment
	Namespace string
	Name      string
}

func (w Workload) String() string { return w.Kind + " " + w.Namespace + "/" + w.Name }

// Workloads returns the DaemonSets and Deployments (apps/v1) among objs.
func Workloads(objs []*unstructured.Unstructured) []Workload {
	var out []Workload
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		if gvk.Group != appsv1.GroupName || (gvk.Kind != "DaemonSet" && gvk.Kind != "Deployment") {
			continue
		}
		ns := o.GetNamespace()
		if ns == "" {
			ns = metav1.NamespaceDefault
		}
		out = append(out, Workload{Kind: gvk.Kind, Namespace: ns, Name: o.GetName()})
	}
	return out
}

// Wait polls until every workload has all its pods updated and available,
// or timeout passes: then the error names every workload that is not ready,
// why, and what its pods are waiting for.
func Wait(ctx context.Context, client kubernetes.Interface, workloads []Workload, timeout time.Duration) error {
	var pending []string
	err := wait.PollUntilContextTimeout(ctx, waitInterval, timeout, true, func(ctx context.Context) (bool, error) {
		pending = pending[:0]
		for _, w := range workloads {
			reason, err := notReady(ctx, client, w)
			if err != nil {
				return false, err
			}
			if reason != "" {
				pending = append(pending, w.String()+": "+reason)
			}
		}
		return len(pending) == 0, nil
	})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("waiting for %s: %w", strings.Join(pending, "; "), ctx.Err())
	}
	if len(pending) == 0 || !(wait.Interrupted(err) || errors.Is(err, context.DeadlineExceeded)) {
		return err
	}
	// The poll's own context has expired: describe the pods with a fresh one.
	detailCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var details []string
	for _, w := range workloads {
		details = append(details, podProblems(detailCtx, client, w)...)
	}
	msg := fmt.Sprintf("not ready after %s: %s", timeout, strings.Join(pending, "; "))
	if len(details) > 0 {
		msg += "\n  " + strings.Join(details, "\n  ")
	}
	return errors.New(msg)
}

// readFailed is the reason of a workload that could not be read: one more
// reason it is not ready yet, so the wait goes on (a request the client's
// rate limiter refuses near the deadline, an API server hiccup).
func readFailed(err error) string { return "not read: " + err.Error() }

// notReady returns why w is not ready, or "" when it is.
func notReady(ctx context.Context, client kubernetes.Interface, w Workload) (string, error) {
	switch w.Kind {
	case "DaemonSet":
		ds, err := client.AppsV1().DaemonSets(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return "not found", nil
		}
		if err != nil {
			return readFailed(err), nil
		}
		return daemonSetNotReady(ds), nil
	case "Deployment":
		d, err := client.AppsV1().Deployments(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return "not found", nil
		}
		if err != nil {
			return readFailed(err), nil
		}
		return deploymentNotReady(d), nil
	}
	return "", fmt.Errorf("%s: cannot wait for a %s", w, w.Kind)
}

func daemonSetNotReady(ds *appsv1.DaemonSet) string {
	s := ds.Status
	switch {
	case s.ObservedGeneration < ds.Generation:
		return "update not observed yet"
	case s.DesiredNumberScheduled == 0:
		return "no pods scheduled yet"
	case s.UpdatedNumberScheduled < s.DesiredNumberScheduled:
		return fmt.Sprintf("%d of %d pods updated", s.UpdatedNumberScheduled, s.DesiredNumberScheduled)
	case s.NumberAvailable < s.DesiredNumberScheduled:
		return fmt.Sprintf("%d of %d pods available", s.NumberAvailable, s.DesiredNumberScheduled)
	}
	return ""
}

func deploymentNotReady(d *appsv1.Deployment) string {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	switch {
	case s.ObservedGeneration < d.Generation:
		return "update not observed yet"
	case s.UpdatedReplicas < want:
		return fmt.Sprintf("%d of %d replicas updated", s.UpdatedReplicas, want)
	case s.AvailableReplicas < want:
		return fmt.Sprintf("%d of %d replicas available", s.AvailableReplicas, want)
	}
	return ""
}

// podProblems describes what the not-ready pods of w wait for.
func podProblems(ctx context.Context, client kubernetes.Interface, w Workload) []string {
	var selector *metav1.LabelSelector
	switch w.Kind {
	case "DaemonSet":
		if ds, err := client.AppsV1().DaemonSets(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{}); err == nil {
			selector = ds.Spec.Selector
		}
	case "Deployment":
		if d, err := client.AppsV1().Deployments(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{}); err == nil {
			selector = d.Spec.Selector
		}
	}
	if selector == nil {
		return nil
	}
	sel, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		return nil
	}
	pods, err := client.CoreV1().Pods(w.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return []string{fmt.Sprintf("%s: listing its pods: %v", w, err)}
	}
	var out []string
	for _, p := range pods.Items {
		if len(out) == maxPodsReported {
			break
		}
		if problem := podProblem(&p); problem != "" {
			node := p.Spec.NodeName
			if node == "" {
				node = "no node"
			}
			out = append(out, fmt.Sprintf("pod %s/%s (%s): %s", p.Namespace, p.Name, node, problem))
		}
	}
	return out
}

// podProblem says why a pod is not ready ("" when it is).
func podProblem(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return ""
		}
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return strings.TrimSpace("unschedulable: " + c.Message)
		}
	}
	statuses := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	for _, s := range statuses {
		switch {
		case s.State.Waiting != nil && s.State.Waiting.Reason != "":
			return strings.TrimSpace(fmt.Sprintf("container %s waiting: %s %s", s.Name, s.State.Waiting.Reason, s.State.Waiting.Message))
		case s.State.Terminated != nil && s.State.Terminated.ExitCode != 0:
			return fmt.Sprintf("container %s exited %d: %s", s.Name, s.State.Terminated.ExitCode, s.State.Terminated.Reason)
		case s.State.Running != nil && !s.Ready && s.Started != nil && *s.Started:
			return fmt.Sprintf("container %s running, not ready (restarts %d)", s.Name, s.RestartCount)
		}
	}
	return "phase " + string(p.Status.Phase)
}
