package framework

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified
	. "github.com/onsi/gomega"    //nolint:revive // as does Gomega's

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// relabelPod replaces a pod's labels and restores the old ones after the spec.
func (r *run) relabelPod(ctx context.Context, namespace, name string, labels map[string]string) {
	pods := r.env.Client.CoreV1().Pods(namespace)
	pod, err := pods.Get(ctx, name, metav1.GetOptions{})
	Expect(err).NotTo(HaveOccurred())
	old := maps.Clone(pod.Labels)
	Expect(replaceLabels(func(patch []byte) error {
		_, err := pods.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
		return err
	}, pod.Labels, labels)).To(Succeed(), "relabelling pod %s/%s", namespace, name)
	DeferCleanup(func(ctx SpecContext) {
		current, err := pods.Get(ctx, name, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(replaceLabels(func(patch []byte) error {
			_, err := pods.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
			return err
		}, current.Labels, old)).To(Succeed(), "restoring the labels of pod %s/%s", namespace, name)
	})
}

// relabelNamespace replaces a namespace's labels (keeping the API server's
// kubernetes.io/metadata.name) and restores them after the spec.
func (r *run) relabelNamespace(ctx context.Context, name string, labels map[string]string) {
	namespaces := r.env.Client.CoreV1().Namespaces()
	ns, err := namespaces.Get(ctx, name, metav1.GetOptions{})
	Expect(err).NotTo(HaveOccurred())
	old := maps.Clone(ns.Labels)
	labels = maps.Clone(labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[corev1.LabelMetadataName] = name
	patch := func(ctx context.Context) func([]byte) error {
		return func(p []byte) error {
			_, err := namespaces.Patch(ctx, name, types.MergePatchType, p, metav1.PatchOptions{})
			return err
		}
	}
	Expect(replaceLabels(patch(ctx), ns.Labels, labels)).To(Succeed(), "relabelling namespace %s", name)
	DeferCleanup(func(ctx SpecContext) {
		current, err := namespaces.Get(ctx, name, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(replaceLabels(patch(ctx), current.Labels, old)).To(Succeed(), "restoring the labels of namespace %s", name)
	})
}

// replaceLabels sends a merge patch turning current into want.
func replaceLabels(patch func([]byte) error, current, want map[string]string) error {
	labels := map[string]any{}
	for k := range current {
		if _, keep := want[k]; !keep {
			labels[k] = nil
		}
	}
	for k, v := range want {
		labels[k] = v
	}
	body, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels}})
	if err != nil {
		return err
	}
	return patch(body)
}

func namespaceObject(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: maps.Clone(labels)}}
}

// shortHash is a 6-hex-digit token of s, for names.
func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:3])
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func mustJSON(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%q", err.Error())
	}
	return string(data)
}
