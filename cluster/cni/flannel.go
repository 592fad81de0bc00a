package cni

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// BridgePluginPath is where the netpolcheck image holds the CNI bridge
// plugin (containernetworking/plugins; build/Dockerfile builds it).
const BridgePluginPath = "/cni/bridge"

// bridgeInitContainer names the init container the Flannel installer adds.
const bridgeInitContainer = "install-bridge-plugin"

// flanneldContainer is the DaemonSet's flanneld container.
const flanneldContainer = "kube-flannel"

// Flannel backends the installer can select (net-conf.json Backend.Type).
const (
	FlannelVXLAN  = "vxlan"
	FlannelHostGW = "host-gw"
)

// flannel installs Flannel, which does not enforce NetworkPolicy: the
// baseline where every connection is allowed. Its manifest is read from
// FlannelModule's zip (no network needed, and exactly the pinned file).
// Flannel's plugin delegates to the CNI bridge plugin, which kind node
// images do not ship (they hold host-local, loopback, ptp and portmap), so
// unless Options.NodeCNIPlugins says the nodes have it, the installer adds
// an init container that copies it from the netpolcheck image into the
// node's /opt/cni/bin.
type flannel struct{ opts Options }

func (f *flannel) Name() string         { return "flannel" }
func (f *flannel) EnforcesPolicy() bool { return false }
func (f *flannel) Source() string {
	source := FlannelManifest + " of " + FlannelModule.String()
	if !f.opts.NodeCNIPlugins {
		source += " (+ the CNI bridge plugin from " + f.opts.Image + ")"
	}
	return source
}

func (f *flannel) Manifests(ctx context.Context) ([]*unstructured.Unstructured, error) {
	data, err := f.opts.ReadModuleFile(ctx, FlannelModule, FlannelManifest)
	if err != nil {
		return nil, fmt.Errorf("flannel manifest: %w", err)
	}
	objs, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("decoding %s: %w", f.Source(), err)
	}
	if err := f.patch(objs); err != nil {
		return nil, fmt.Errorf("flannel %s: %w", FlannelVersion, err)
	}
	return objs, nil
}

func (f *flannel) patch(objs []*unstructured.Unstructured) error {
	cm, err := mustFind(objs, "ConfigMap", "kube-flannel", "kube-flannel-cfg")
	if err != nil {
		return err
	}
	if err := patchNetConf(cm, f.opts.PodCIDR); err != nil {
		return err
	}
	if f.opts.FlannelBackend != "" {
		if err := patchFlannelBackend(cm, f.opts.FlannelBackend); err != nil {
			return err
		}
	}
	ds, err := mustFind(objs, "DaemonSet", "kube-flannel", "kube-flannel-ds")
	if err != nil {
		return err
	}
	if _, err := container(ds, flanneldContainer); err != nil {
		return err
	}
	if f.opts.FlannelInterface != "" {
		if err := editContainer(ds, flanneldContainer, func(c map[string]any) {
			args, _ := c["args"].([]any)
			c["args"] = append(args, "--iface="+f.opts.FlannelInterface)
		}); err != nil {
			return err
		}
	}
	volume, err := hostPathVolume(ds, "/opt/cni/bin")
	if err != nil {
		return err
	}
	if f.opts.NodeCNIPlugins {
		return nil
	}
	inits, err := podContainers(ds, "initContainers")
	if err != nil {
		return err
	}
	install := map[string]any{
		"name":            bridgeInitContainer,
		"image":           f.opts.Image,
		"imagePullPolicy": "IfNotPresent",
		"command":         []any{"/netpolcheck-routes", "install-cni", "--from=" + BridgePluginPath, "--to=/host/opt/cni/bin"},
		"volumeMounts":    []any{map[string]any{"name": volume, "mountPath": "/host/opt/cni/bin"}},
	}
	return setPodContainers(ds, "initContainers", append([]map[string]any{install}, inits...))
}

// patchFlannelBackend sets the backend type in the ConfigMap's
// net-conf.json, dropping the settings of the manifest's backend.
func patchFlannelBackend(cm *unstructured.Unstructured, backend string) error {
	if backend != FlannelVXLAN && backend != FlannelHostGW {
		return fmt.Errorf("flannel backend %q: want %s or %s", backend, FlannelVXLAN, FlannelHostGW)
	}
	return editNetConf(cm, func(conf map[string]any) { conf["Backend"] = map[string]any{"Type": backend} })
}

// hostPathVolume returns the name of the workload's volume that mounts the
// host directory path.
func hostPathVolume(workload *unstructured.Unstructured, path string) (string, error) {
	volumes, _, err := unstructured.NestedSlice(workload.Object, "spec", "template", "spec", "volumes")
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", workload.GetKind(), workload.GetName(), err)
	}
	for _, v := range volumes {
		volume, ok := v.(map[string]any)
		if !ok {
			continue
		}
		if p, _, _ := unstructured.NestedString(volume, "hostPath", "path"); p == path {
			name, _ := volume["name"].(string)
			return name, nil
		}
	}
	return "", fmt.Errorf("%s %s/%s has no volume for host %s: the upstream manifest's layout changed",
		workload.GetKind(), workload.GetNamespace(), workload.GetName(), path)
}
