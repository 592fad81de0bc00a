package cni

import (
	"context"
	"fmt"
	"io"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// Install renders inst's objects, applies them to the cluster of config
// and waits up to timeout for its DaemonSets and Deployments, writing
// progress lines to progress.
func Install(ctx context.Context, config *rest.Config, inst Installer, timeout time.Duration, progress io.Writer) error {
	fmt.Fprintf(progress, "cni %s: rendering %s\n", inst.Name(), inst.Source())
	objs, err := inst.Manifests(ctx)
	if err != nil {
		return fmt.Errorf("cni %s: %w", inst.Name(), err)
	}
	if len(objs) == 0 {
		fmt.Fprintf(progress, "cni %s: nothing to apply\n", inst.Name())
		return nil
	}
	dyn, err := dynamic.NewForConfig(config)
	if err != nil {
		return fmt.Errorf("cni %s: dynamic client: %w", inst.Name(), err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(config)
	if err != nil {
		return fmt.Errorf("cni %s: discovery client: %w", inst.Name(), err)
	}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return fmt.Errorf("cni %s: kube client: %w", inst.Name(), err)
	}
	applier := &Applier{Client: dyn, Mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))}
	fmt.Fprintf(progress, "cni %s: applying %d objects\n", inst.Name(), len(objs))
	if err := applier.Apply(ctx, objs); err != nil {
		return fmt.Errorf("cni %s: %w", inst.Name(), err)
	}
	workloads := Workloads(objs)
	fmt.Fprintf(progress, "cni %s: waiting up to %s for %d workloads\n", inst.Name(), timeout, len(workloads))
	if err := Wait(ctx, client, workloads, timeout); err != nil {
		return fmt.Errorf("cni %s: %w", inst.Name(), err)
	}
	fmt.Fprintf(progress, "cni %s: ready\n", inst.Name())
	return nil
}
