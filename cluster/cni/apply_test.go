package cni

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	clienttesting "k8s.io/client-go/testing"
)

// resettableMapper is a static RESTMapper that counts resets.
type resettableMapper struct {
	*meta.DefaultRESTMapper
	resets int
}

func (m *resettableMapper) Reset() { m.resets++ }

func newMapper() *resettableMapper {
	m := meta.NewDefaultRESTMapper(nil)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}, meta.RESTScopeRoot)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "DaemonSet"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}, meta.RESTScopeRoot)
	return &resettableMapper{DefaultRESTMapper: m}
}

// appliedObject is one server-side apply the fake client saw.
type appliedObject struct {
	resource, namespace, name string
}

func TestApplierOrderAndOptions(t *testing.T) {
	objs, err := Decode([]byte(`apiVersion: apps/v1
kind: DaemonSet
metadata: {name: node, namespace: kube-system}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: no-namespace}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: things.example.com}
---
apiVersion: v1
kind: Namespace
metadata: {name: cni}
`))
	if err != nil {
		t.Fatal(err)
	}
	client := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
	var applied []appliedObject
	client.PrependReactor("patch", "*", func(action clienttesting.Action) (bool, runtime.Object, error) {
		patch := action.(clienttesting.PatchAction)
		if patch.GetPatchType() != types.ApplyPatchType {
			t.Errorf("patch type %s, want server-side apply", patch.GetPatchType())
		}
		opts := patch.(clienttesting.PatchActionImpl).PatchOptions
		if opts.FieldManager != FieldManager || opts.Force == nil || !*opts.Force {
			t.Errorf("patch options %+v, want field manager %s, forced", opts, FieldManager)
		}
		var sent unstructured.Unstructured
		if err := json.Unmarshal(patch.GetPatch(), &sent.Object); err != nil {
			t.Fatal(err)
		}
		if sent.GetNamespace() != patch.GetNamespace() {
			t.Errorf("%s: body namespace %q, request namespace %q", sent.GetName(), sent.GetNamespace(), patch.GetNamespace())
		}
		applied = append(applied, appliedObject{patch.GetResource().Resource, patch.GetNamespace(), patch.GetName()})
		return true, &sent, nil
	})
	applier := &Applier{Client: client, Mapper: newMapper()}
	if err := applier.Apply(context.Background(), objs); err != nil {
		t.Fatal(err)
	}
	want := []appliedObject{
		{"namespaces", "", "cni"},
		{"customresourcedefinitions", "", "things.example.com"},
		{"daemonsets", "kube-system", "node"},
		{"configmaps", metav1.NamespaceDefault, "no-namespace"},
	}
	if len(applied) != len(want) {
		t.Fatalf("applied %v, want %v", applied, want)
	}
	for i := range want {
		if applied[i] != want[i] {
			t.Errorf("apply %d: %+v, want %+v", i, applied[i], want[i])
		}
	}
	if objs[1].GetNamespace() != "" {
		t.Error("Apply modified its input")
	}
}

func TestApplierUnknownKind(t *testing.T) {
	objs, err := Decode([]byte("apiVersion: example.com/v1\nkind: Thing\nmetadata: {name: t}\n"))
	if err != nil {
		t.Fatal(err)
	}
	mapper := newMapper()
	applier := &Applier{Client: dynamicfake.NewSimpleDynamicClient(runtime.NewScheme()), Mapper: mapper, MappingTimeout: 1200 * time.Millisecond}
	err = applier.Apply(context.Background(), objs)
	if err == nil || !strings.Contains(err.Error(), "applying Thing t: the cluster does not serve example.com/v1, Kind=Thing") {
		t.Fatalf("error %v, want one naming the unserved kind", err)
	}
	if mapper.resets < 2 {
		t.Errorf("the mapper was reset %d times: an unknown kind must be retried after discovery is refreshed", mapper.resets)
	}
}
