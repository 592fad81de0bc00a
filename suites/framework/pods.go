package framework

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/probes/transport"
)

// ProbeContainer is the container of every suite pod that probes run in
// (through kube exec); it serves nothing.
const ProbeContainer = "probe"

// podReadyTimeout bounds the wait for a scenario's pods.
const podReadyTimeout = 3 * time.Minute

// Readiness of the probe pods: the probe container's exec probe
// `netpolcheck-probe ready` probes every port the pod serves on the pod's
// own loopback. An exec probe shares the pod's network namespace, so it
// never crosses the node-to-pod path that policies may block on some CNIs
// (a tcpSocket or HTTP probe from the kubelet would). The startup probe
// runs every second until the servers answer, so a pod is Ready about as
// soon as they listen; the readiness probe then checks them every ten
// seconds, so a server that stays down (three checks in a row) takes its
// pod out of Ready.
const (
	startupPeriodSeconds   = 1
	startupFailures        = 180
	readinessPeriodSeconds = 10
	readinessFailures      = 3
	readyTimeoutSeconds    = 3
)

// PodObject returns the pod a model pod becomes in namespace: one container
// per model container, serving its ports with the probe agent (which answers
// with the pod's identity), plus the probe container, which is ready once
// every port answers (see readyProbe). A host-network model pod becomes a
// host-network pod bound to its node.
func PodObject(namespace string, p matrix.Pod, image string) *corev1.Pod {
	env := []corev1.EnvVar{
		{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
		{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
	}
	security := &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_RAW"}}}
	grace := int64(1)
	probe := corev1.Container{
		Name: ProbeContainer, Image: image, Env: env, SecurityContext: security,
		Command: []string{transport.DefaultBinary, "idle"},
	}
	var servers []corev1.Container
	var served []string
	for _, c := range p.Containers {
		if len(c.Ports) == 0 {
			continue
		}
		args := []string{transport.DefaultBinary, "serve", "--identity", "$(POD_NAMESPACE)/$(POD_NAME)", "--container", c.Name}
		container := corev1.Container{Name: c.Name, Image: image, Env: env, SecurityContext: security}
		for _, port := range c.Ports {
			proto := port.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			spec := fmt.Sprintf("%d/%s", port.ContainerPort, proto)
			args = append(args, "--port", spec)
			served = append(served, spec)
			container.Ports = append(container.Ports, corev1.ContainerPort{Name: port.Name, ContainerPort: port.ContainerPort, Protocol: proto})
		}
		container.Command = args
		servers = append(servers, container)
	}
	if len(served) > 0 {
		probe.StartupProbe = readyProbe(served, startupPeriodSeconds, startupFailures)
		probe.ReadinessProbe = readyProbe(served, readinessPeriodSeconds, readinessFailures)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: namespace, Labels: p.Labels},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			Containers:                    append([]corev1.Container{probe}, servers...),
		},
	}
	if p.HostNetwork {
		pod.Spec.HostNetwork, pod.Spec.NodeName = true, p.Node
	}
	return pod
}

// readyProbe is an exec probe that succeeds when every port spec (80/TCP)
// answers on the pod's loopback.
func readyProbe(ports []string, periodSeconds, failures int32) *corev1.Probe {
	cmd := []string{transport.DefaultBinary, "ready"}
	for _, p := range ports {
		cmd = append(cmd, "--port", p)
	}
	return &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: cmd}},
		PeriodSeconds:    periodSeconds,
		TimeoutSeconds:   readyTimeoutSeconds,
		SuccessThreshold: 1,
		FailureThreshold: failures,
	}
}

// waitPodsRunning waits until every named pod runs with an IP and is ready,
// and returns them.
func waitPodsRunning(ctx context.Context, client kubernetes.Interface, namespaces []string, count int) ([]corev1.Pod, error) {
	ctx, cancel := context.WithTimeout(ctx, podReadyTimeout)
	defer cancel()
	for {
		var ready []corev1.Pod
		var waiting []string
		for _, ns := range namespaces {
			list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, fmt.Errorf("listing pods of %s: %w", ns, err)
			}
			for _, p := range list.Items {
				if podReady(&p) {
					ready = append(ready, p)
				} else {
					waiting = append(waiting, fmt.Sprintf("%s/%s (%s)", p.Namespace, p.Name, p.Status.Phase))
				}
			}
		}
		if len(ready) == count {
			sort.Slice(ready, func(i, j int) bool {
				return ready[i].Namespace+"/"+ready[i].Name < ready[j].Namespace+"/"+ready[j].Name
			})
			return ready, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%d of %d pods ready; waiting for %s: %w", len(ready), count, strings.Join(waiting, ", "), ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func podReady(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" || p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
