package cni

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
)

// FieldManager is the server-side apply field manager of every object the
// installers apply.
const FieldManager = "netpolcheck"

// Applier applies objects with server-side apply, which creates or updates
// them and, unlike client-side apply, has no size limit from the
// last-applied annotation (Calico's CRDs exceed it).
type Applier struct {
	Client dynamic.Interface
	// Mapper maps kinds to resources; it is reset and retried while a kind
	// is unknown, so custom resources can follow the CRDs that define them.
	Mapper meta.ResettableRESTMapper
	// MappingTimeout bounds the wait for an unknown kind to appear.
	MappingTimeout time.Duration
}

// Apply applies objs: Namespaces first, then CustomResourceDefinitions,
// then the rest in their order. A namespaced object without a namespace
// goes to "default".
func (a *Applier) Apply(ctx context.Context, objs []*unstructured.Unstructured) error {
	for _, obj := range applyOrder(objs) {
		if err := a.apply(ctx, obj); err != nil {
			return err
		}
	}
	return nil
}

// applyOrder returns objs with Namespaces first and CRDs second, keeping
// the order within each group.
func applyOrder(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	rank := func(o *unstructured.Unstructured) int {
		switch o.GroupVersionKind().GroupKind().String() {
		case "Namespace":
			return 0
		case "CustomResourceDefinition.apiextensions.k8s.io":
			return 1
		}
		return 2
	}
	ordered := make([]*unstructured.Unstructured, 0, len(objs))
	for r := 0; r <= 2; r++ {
		for _, o := range objs {
			if rank(o) == r {
				ordered = append(ordered, o)
			}
		}
	}
	return ordered
}

func (a *Applier) apply(ctx context.Context, obj *unstructured.Unstructured) error {
	desc := fmt.Sprintf("%s %s", obj.GetKind(), obj.GetName())
	mapping, err := a.mapping(ctx, obj)
	if err != nil {
		return fmt.Errorf("applying %s: %w", desc, err)
	}
	var resource dynamic.ResourceInterface = a.Client.Resource(mapping.Resource)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := obj.GetNamespace()
		if ns == "" {
			ns = metav1.NamespaceDefault
		}
		desc = fmt.Sprintf("%s %s/%s", obj.GetKind(), ns, obj.GetName())
		obj = obj.DeepCopy()
		obj.SetNamespace(ns)
		resource = a.Client.Resource(mapping.Resource).Namespace(ns)
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("applying %s: %w", desc, err)
	}
	force := true
	_, err = resource.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: FieldManager, Force: &force})
	if err != nil {
		return fmt.Errorf("applying %s: %w", desc, err)
	}
	return nil
}

// defaultMappingTimeout is the wait for an unknown kind when the Applier
// does not set one.
const defaultMappingTimeout = time.Minute

// mapping finds the resource of obj's kind, resetting the mapper and
// retrying while the kind is unknown (a CRD applied just before is not
// served yet).
func (a *Applier) mapping(ctx context.Context, obj *unstructured.Unstructured) (*meta.RESTMapping, error) {
	gvk := obj.GroupVersionKind()
	timeout := a.MappingTimeout
	if timeout <= 0 {
		timeout = defaultMappingTimeout
	}
	var mapping *meta.RESTMapping
	var noMatch error
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		var err error
		mapping, err = a.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		switch {
		case err == nil:
			return true, nil
		case meta.IsNoMatchError(err):
			noMatch = err
			a.Mapper.Reset()
			return false, nil
		default:
			noMatch = nil
			return false, err
		}
	})
	switch {
	case err == nil:
		return mapping, nil
	case noMatch != nil:
		return nil, fmt.Errorf("the cluster does not serve %s (waited %s): %w", gvk, timeout, noMatch)
	default:
		return nil, err
	}
}
