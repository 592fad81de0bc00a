package cni

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// fetchObjects downloads the manifest at url and decodes it.
func fetchObjects(ctx context.Context, fetch Fetcher, url string) ([]*unstructured.Unstructured, error) {
	data, err := fetch(ctx, url)
	if err != nil {
		return nil, err
	}
	objs, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("decoding %s: %w", url, err)
	}
	return objs, nil
}

// calico installs Calico from its self-contained manifest, with the
// default IP pool set to the cluster pod CIDR (the manifest leaves
// CALICO_IPV4POOL_CIDR commented out).
type calico struct{ opts Options }

func (c *calico) Name() string         { return "calico" }
func (c *calico) EnforcesPolicy() bool { return true }
func (c *calico) Source() string       { return CalicoManifestURL }

func (c *calico) Manifests(ctx context.Context) ([]*unstructured.Unstructured, error) {
	objs, err := fetchObjects(ctx, c.opts.Fetch, CalicoManifestURL)
	if err != nil {
		return nil, err
	}
	if err := c.patch(objs); err != nil {
		return nil, fmt.Errorf("calico %s: %w", CalicoVersion, err)
	}
	return objs, nil
}

func (c *calico) patch(objs []*unstructured.Unstructured) error {
	ds, err := mustFind(objs, "DaemonSet", "kube-system", "calico-node")
	if err != nil {
		return err
	}
	err = editContainer(ds, "calico-node", func(node map[string]any) {
		setEnv(node, "CALICO_IPV4POOL_CIDR", c.opts.PodCIDR)
	})
	if err != nil {
		return err
	}
	if _, err := mustFind(objs, "Deployment", "kube-system", "calico-kube-controllers"); err != nil {
		return err
	}
	return nil
}

// canal installs Canal (Flannel VXLAN network, Calico policy) from Calico's
// manifest, with Flannel's network set to the cluster pod CIDR.
type canal struct{ opts Options }

func (c *canal) Name() string         { return "canal" }
func (c *canal) EnforcesPolicy() bool { return true }
func (c *canal) Source() string       { return CanalManifestURL }

func (c *canal) Manifests(ctx context.Context) ([]*unstructured.Unstructured, error) {
	objs, err := fetchObjects(ctx, c.opts.Fetch, CanalManifestURL)
	if err != nil {
		return nil, err
	}
	if err := c.patch(objs); err != nil {
		return nil, fmt.Errorf("canal (calico %s): %w", CalicoVersion, err)
	}
	return objs, nil
}

func (c *canal) patch(objs []*unstructured.Unstructured) error {
	cm, err := mustFind(objs, "ConfigMap", "kube-system", "canal-config")
	if err != nil {
		return err
	}
	if err := patchNetConf(cm, c.opts.PodCIDR); err != nil {
		return err
	}
	ds, err := mustFind(objs, "DaemonSet", "kube-system", "canal")
	if err != nil {
		return err
	}
	for _, name := range []string{"calico-node", "kube-flannel"} {
		if _, err := container(ds, name); err != nil {
			return err
		}
	}
	return nil
}
