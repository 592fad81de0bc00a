package cni

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Decode parses a multi-document YAML (or JSON) manifest into objects, in
// order. Empty documents (only comments, as helm emits) are skipped; a
// `kind: List` is expanded into its items; a document without apiVersion or
// kind is an error naming it.
func Decode(manifest []byte) ([]*unstructured.Unstructured, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(manifest)))
	var objs []*unstructured.Unstructured
	for doc := 1; ; doc++ {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", doc, err)
		}
		var content map[string]any
		// Numbers stay json.Number: integers keep their exact value.
		if err := yaml.Unmarshal(raw, &content, func(d *json.Decoder) *json.Decoder { d.UseNumber(); return d }); err != nil {
			return nil, fmt.Errorf("document %d: %w", doc, err)
		}
		if len(content) == 0 {
			continue
		}
		obj := &unstructured.Unstructured{Object: content}
		if obj.GetAPIVersion() == "" || obj.GetKind() == "" {
			return nil, fmt.Errorf("document %d: no apiVersion or kind", doc)
		}
		if !obj.IsList() {
			objs = append(objs, obj)
			continue
		}
		list, err := obj.ToList()
		if err != nil {
			return nil, fmt.Errorf("document %d (List): %w", doc, err)
		}
		for i := range list.Items {
			objs = append(objs, &list.Items[i])
		}
	}
}

// find returns the object of kind in namespace named name, or nil.
func find(objs []*unstructured.Unstructured, kind, namespace, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetNamespace() == namespace && o.GetName() == name {
			return o
		}
	}
	return nil
}

// mustFind is find that fails with an error saying the upstream layout
// changed.
func mustFind(objs []*unstructured.Unstructured, kind, namespace, name string) (*unstructured.Unstructured, error) {
	if o := find(objs, kind, namespace, name); o != nil {
		return o, nil
	}
	return nil, fmt.Errorf("no %s %s/%s: the upstream manifest's layout changed", kind, namespace, name)
}

// podContainers returns a copy of the containers (field "containers") or
// init containers (field "initContainers") of a workload's pod template.
func podContainers(workload *unstructured.Unstructured, field string) ([]map[string]any, error) {
	list, _, err := unstructured.NestedSlice(workload.Object, "spec", "template", "spec", field)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", workload.GetKind(), workload.GetName(), err)
	}
	containers := make([]map[string]any, 0, len(list))
	for i, item := range list {
		c, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s %s: %s[%d] is not an object", workload.GetKind(), workload.GetName(), field, i)
		}
		containers = append(containers, c)
	}
	return containers, nil
}

// setPodContainers replaces a pod template's containers or init containers.
func setPodContainers(workload *unstructured.Unstructured, field string, containers []map[string]any) error {
	list := make([]any, len(containers))
	for i, c := range containers {
		list[i] = c
	}
	if err := unstructured.SetNestedSlice(workload.Object, list, "spec", "template", "spec", field); err != nil {
		return fmt.Errorf("%s %s: %w", workload.GetKind(), workload.GetName(), err)
	}
	return nil
}

// container returns a copy of the named container of a workload's pod
// template.
func container(workload *unstructured.Unstructured, name string) (map[string]any, error) {
	containers, err := podContainers(workload, "containers")
	if err != nil {
		return nil, err
	}
	for _, c := range containers {
		if c["name"] == name {
			return c, nil
		}
	}
	return nil, fmt.Errorf("%s %s/%s has no container %q: the upstream manifest's layout changed",
		workload.GetKind(), workload.GetNamespace(), workload.GetName(), name)
}

// editContainer applies edit to the named container of a workload's pod
// template.
func editContainer(workload *unstructured.Unstructured, name string, edit func(map[string]any)) error {
	containers, err := podContainers(workload, "containers")
	if err != nil {
		return err
	}
	for _, c := range containers {
		if c["name"] == name {
			edit(c)
			return setPodContainers(workload, "containers", containers)
		}
	}
	return fmt.Errorf("%s %s/%s has no container %q: the upstream manifest's layout changed",
		workload.GetKind(), workload.GetNamespace(), workload.GetName(), name)
}

// setEnv sets the environment variable name of container c to value,
// replacing any definition of it (also one from valueFrom).
func setEnv(c map[string]any, name, value string) {
	env, _ := c["env"].([]any)
	entry := map[string]any{"name": name, "value": value}
	for i, e := range env {
		if m, ok := e.(map[string]any); ok && m["name"] == name {
			env[i] = entry
			return
		}
	}
	c["env"] = append(env, entry)
}

// patchNetConf sets "Network" in the Flannel net-conf.json held by the
// ConfigMap cm, keeping every other field.
func patchNetConf(cm *unstructured.Unstructured, network string) error {
	return editNetConf(cm, func(conf map[string]any) { conf["Network"] = network })
}

// editNetConf applies edit to the Flannel net-conf.json held by the
// ConfigMap cm.
func editNetConf(cm *unstructured.Unstructured, edit func(conf map[string]any)) error {
	text, found, err := unstructured.NestedString(cm.Object, "data", "net-conf.json")
	if err != nil || !found {
		return fmt.Errorf("ConfigMap %s/%s has no data.net-conf.json: the upstream manifest's layout changed", cm.GetNamespace(), cm.GetName())
	}
	var conf map[string]any
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber() // keep numbers (VNI, Port) exactly as written
	if err := dec.Decode(&conf); err != nil {
		return fmt.Errorf("ConfigMap %s/%s net-conf.json: %w", cm.GetNamespace(), cm.GetName(), err)
	}
	edit(conf)
	patched, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return fmt.Errorf("ConfigMap %s/%s net-conf.json: %w", cm.GetNamespace(), cm.GetName(), err)
	}
	return unstructured.SetNestedField(cm.Object, string(patched)+"\n", "data", "net-conf.json")
}
