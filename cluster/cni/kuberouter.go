package cni

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// kubeRouterRepository is kube-router's image without a tag, as its
// manifest names it.
const kubeRouterRepository = "docker.io/cloudnativelabs/kube-router"

// kubeRouter installs kube-router as pod network and NetworkPolicy
// controller beside kube-proxy. Its manifest names the image without a tag
// and pulls it Always; the installer pins every kube-router container to
// KubeRouterImage, pulled IfNotPresent. Node pod CIDRs come from the
// cluster (kube-controller-manager allocates them from the pod subnet), so
// nothing else needs patching; its install-cni init container also copies
// the CNI plugins kind nodes lack (bridge).
type kubeRouter struct{ opts Options }

func (k *kubeRouter) Name() string         { return "kube-router" }
func (k *kubeRouter) EnforcesPolicy() bool { return true }
func (k *kubeRouter) Source() string       { return KubeRouterManifestURL }

func (k *kubeRouter) Manifests(ctx context.Context) ([]*unstructured.Unstructured, error) {
	objs, err := fetchObjects(ctx, k.opts.Fetch, KubeRouterManifestURL)
	if err != nil {
		return nil, err
	}
	if err := k.patch(objs); err != nil {
		return nil, fmt.Errorf("kube-router %s: %w", KubeRouterVersion, err)
	}
	return objs, nil
}

func (k *kubeRouter) patch(objs []*unstructured.Unstructured) error {
	ds, err := mustFind(objs, "DaemonSet", "kube-system", "kube-router")
	if err != nil {
		return err
	}
	installsPlugins, err := pinKubeRouterImage(ds, KubeRouterImage)
	if err != nil {
		return err
	}
	if !installsPlugins {
		return fmt.Errorf("DaemonSet kube-system/kube-router: no install-cni init container running %s (it installs the bridge plugin kind nodes lack): the upstream manifest's layout changed", kubeRouterRepository)
	}
	return nil
}

// pinKubeRouterImage sets every kube-router container and init container
// of ds to image, pulled IfNotPresent, and reports whether its install-cni
// init container is among them.
func pinKubeRouterImage(ds *unstructured.Unstructured, image string) (installsCNI bool, err error) {
	if _, err := container(ds, "kube-router"); err != nil {
		return false, err
	}
	for _, field := range []string{"initContainers", "containers"} {
		containers, err := podContainers(ds, field)
		if err != nil {
			return false, err
		}
		for _, c := range containers {
			if current, _ := c["image"].(string); !isKubeRouterImage(current) {
				continue
			}
			c["image"] = image
			c["imagePullPolicy"] = "IfNotPresent"
			if field == "initContainers" && c["name"] == "install-cni" {
				installsCNI = true
			}
		}
		if err := setPodContainers(ds, field, containers); err != nil {
			return false, err
		}
	}
	return installsCNI, nil
}

// isKubeRouterImage reports whether image is kube-router's, with any tag or
// none.
func isKubeRouterImage(image string) bool {
	repository, _, _ := strings.Cut(image, "@")
	if i := strings.LastIndex(repository, ":"); i > strings.LastIndex(repository, "/") {
		repository = repository[:i]
	}
	return repository == kubeRouterRepository || repository == strings.TrimPrefix(kubeRouterRepository, "docker.io/")
}
