// Package observe reads from a live cluster what the policy engine needs:
// namespaces with their labels, pods with their labels, IPs and declared
// container ports (sidecars' included), and the NetworkPolicies in force, all as the API server
// stores them (defaults applied).
package observe

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/netpolcheck/netpolcheck/matrix"
)

// Pod returns a pod as the engine models it.
func Pod(pod *corev1.Pod) matrix.Pod {
	mp := matrix.Pod{Namespace: pod.Namespace, Name: pod.Name, Labels: pod.Labels, Node: pod.Spec.NodeName, HostNetwork: pod.Spec.HostNetwork}
	for _, ip := range pod.Status.PodIPs {
		mp.IPs = append(mp.IPs, ip.IP)
	}
	for i := range pod.Spec.InitContainers {
		if c := &pod.Spec.InitContainers[i]; matrix.IsSidecar(c) {
			mp.Sidecars = append(mp.Sidecars, container(c))
		}
	}
	for i := range pod.Spec.Containers {
		mp.Containers = append(mp.Containers, container(&pod.Spec.Containers[i]))
	}
	return mp
}

func container(c *corev1.Container) matrix.Container {
	mc := matrix.Container{Name: c.Name}
	for _, port := range c.Ports {
		mc.Ports = append(mc.Ports, matrix.ContainerPort{Name: port.Name, ContainerPort: port.ContainerPort, Protocol: port.Protocol})
	}
	return mc
}

// Namespace reads a namespace with its labels.
func Namespace(ctx context.Context, client kubernetes.Interface, name string) (matrix.Namespace, error) {
	ns, err := client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return matrix.Namespace{}, fmt.Errorf("reading namespace %s: %w", name, err)
	}
	return matrix.Namespace{Name: ns.Name, Labels: ns.Labels}, nil
}

// Policies lists the NetworkPolicies of the namespaces, as stored.
func Policies(ctx context.Context, client kubernetes.Interface, namespaces []string) ([]*networkingv1.NetworkPolicy, error) {
	var out []*networkingv1.NetworkPolicy
	for _, ns := range namespaces {
		list, err := client.NetworkingV1().NetworkPolicies(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("reading the NetworkPolicies of %s: %w", ns, err)
		}
		for i := range list.Items {
			out = append(out, &list.Items[i])
		}
	}
	return out, nil
}

// Running returns the model of every running pod with an IP in the
// namespaces, and each modelled pod's object by endpoint name. Pods not
// running yet, or being deleted, are left out: they cannot be probed.
func Running(ctx context.Context, client kubernetes.Interface, namespaces []string) (*matrix.Model, map[string]*corev1.Pod, error) {
	model := &matrix.Model{}
	pods := map[string]*corev1.Pod{}
	for _, name := range namespaces {
		ns, err := Namespace(ctx, client, name)
		if err != nil {
			return nil, nil, err
		}
		model.Namespaces = append(model.Namespaces, ns)
		list, err := client.CoreV1().Pods(name).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, nil, fmt.Errorf("listing the pods of %s: %w", name, err)
		}
		sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
		for i := range list.Items {
			pod := &list.Items[i]
			if pod.Status.Phase != corev1.PodRunning || pod.Status.PodIP == "" || pod.DeletionTimestamp != nil || pod.Spec.HostNetwork {
				continue
			}
			model.Pods = append(model.Pods, Pod(pod))
			pods[matrix.PodName(pod.Namespace, pod.Name)] = pod
		}
	}
	return model, pods, nil
}
