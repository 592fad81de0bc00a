package nodeagent

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// reasonErrImagePull is the kubelet's waiting reason of a container whose
// image cannot be pulled.
const reasonErrImagePull = "ErrImagePull"

// reportImagePullFailure writes the pod Pending with the container waiting
// for its image (reason ErrImagePull, cause as message), and an event.
func (a *Agent) reportImagePullFailure(ctx context.Context, pod *corev1.Pod, container string, cause error) error {
	a.event(ctx, pod, corev1.EventTypeWarning, "Failed", fmt.Sprintf("container %s: %v", container, cause))
	err := a.updateStatus(ctx, pod, func(s *corev1.PodStatus, spec *corev1.PodSpec) {
		s.Phase = corev1.PodPending
		s.HostIP = a.cfg.NodeIP
		s.HostIPs = []corev1.HostIP{{IP: a.cfg.NodeIP}}
		s.ContainerStatuses = nil
		for _, c := range spec.Containers {
			st := corev1.ContainerStatus{Name: c.Name, Image: c.Image,
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}
			if c.Name == container {
				st.State.Waiting = &corev1.ContainerStateWaiting{Reason: reasonErrImagePull, Message: cause.Error()}
			}
			s.ContainerStatuses = append(s.ContainerStatuses, st)
		}
	})
	if err != nil {
		return fmt.Errorf("reporting pod %s/%s waiting for its image: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// updateStatus changes the latest status of pod (the same UID) with change.
func (a *Agent) updateStatus(ctx context.Context, pod *corev1.Pod, change func(*corev1.PodStatus, *corev1.PodSpec)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		latest, err := a.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if latest.UID != pod.UID {
			return apierrors.NewNotFound(corev1.Resource("pods"), pod.Name)
		}
		change(&latest.Status, &latest.Spec)
		_, err = a.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, latest, metav1.UpdateOptions{})
		return err
	})
}

// event records an event about pod from this node; failures are logged
// only, as the kubelet's recorder does.
func (a *Agent) event(ctx context.Context, pod *corev1.Pod, typ, reason, message string) {
	now := metav1.Now()
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: pod.Name + ".", Namespace: pod.Namespace},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name,
			UID: pod.UID, ResourceVersion: pod.ResourceVersion},
		Type: typ, Reason: reason, Message: message,
		Source:         corev1.EventSource{Component: "kubelet", Host: a.cfg.NodeName},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: "kubelet", ReportingInstance: a.cfg.NodeName,
	}
	if _, err := a.client.CoreV1().Events(pod.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		a.cfg.Log.Warn("recording an event", "pod", pod.Namespace+"/"+pod.Name, "reason", reason, "err", err)
	}
}
