package cni

import (
	"context"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// kubeRouterFirewallArgs are the arguments that make kube-router its
// NetworkPolicy controller alone, as its firewall manifest gives them: no
// pod network of its own (the cluster's CNI routes), no service proxy
// (kube-proxy runs).
var kubeRouterFirewallArgs = []string{"--run-router=false", "--run-firewall=true", "--run-service-proxy=false"}

// KubeRouterFirewall returns the installer of kube-router's NetworkPolicy
// controller alone, on top of a cluster's own CNI: the DaemonSet of
// KubeRouterFirewallManifest in KubeRouterFirewallModule, read from that
// module's zip (no network needed, and exactly the pinned file), its images
// pinned to the module's version. The local cluster installs it over the
// reference CNI's routing.
func KubeRouterFirewall(opts Options) (Installer, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("CNI kube-router (firewall): %w", err)
	}
	return &kubeRouterFirewall{opts: opts}, nil
}

type kubeRouterFirewall struct{ opts Options }

func (k *kubeRouterFirewall) Name() string         { return "kube-router-firewall" }
func (k *kubeRouterFirewall) EnforcesPolicy() bool { return true }
func (k *kubeRouterFirewall) Source() string {
	return KubeRouterFirewallManifest + " of " + KubeRouterFirewallModule.String()
}

func (k *kubeRouterFirewall) Manifests(ctx context.Context) ([]*unstructured.Unstructured, error) {
	data, err := k.opts.ReadModuleFile(ctx, KubeRouterFirewallModule, KubeRouterFirewallManifest)
	if err != nil {
		return nil, fmt.Errorf("kube-router firewall manifest: %w", err)
	}
	objs, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("decoding %s: %w", k.Source(), err)
	}
	if err := k.check(objs); err != nil {
		return nil, fmt.Errorf("%s: %w", k.Source(), err)
	}
	return objs, nil
}

// check makes sure the manifest runs kube-router as a policy controller
// alone, and pins its image to the module's version.
func (k *kubeRouterFirewall) check(objs []*unstructured.Unstructured) error {
	ds, err := mustFind(objs, "DaemonSet", "kube-system", "kube-router")
	if err != nil {
		return err
	}
	c, err := container(ds, "kube-router")
	if err != nil {
		return err
	}
	args, _, _ := unstructured.NestedStringSlice(c, "args")
	for _, want := range kubeRouterFirewallArgs {
		if !slices.Contains(args, want) {
			return fmt.Errorf("DaemonSet kube-system/kube-router runs kube-router with %q, without %s: the upstream manifest's layout changed", args, want)
		}
	}
	_, err = pinKubeRouterImage(ds, kubeRouterRepository+":"+KubeRouterFirewallModule.Version)
	return err
}
