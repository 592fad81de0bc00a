package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/netpolcheck/netpolcheck/cluster/local/containerinit"
)

// ProbeBinaryName is the probe agent's executable, at / in the project's
// image.
const ProbeBinaryName = "netpolcheck-probe"

// launch is how one container runs: the spec of its shim.
type launch struct {
	spec containerinit.Spec
	// waitsForReady: the container is a probe server, ready once it prints
	// "ready" (every other container is ready once started).
	waitsForReady bool
	// standIn: the image is not mapped and a probe server stands in for the
	// container on its ports (see the package doc).
	standIn bool
}

// containerLaunch returns how to run a container of pod (whose status has
// the pod's IPs already) in its own mount namespace: its image's binaries
// (resolveImage), volumes, resolv.conf and hosts mounted in, its command
// composed and expanded as the kubelet does, in its environment only. A
// container of an image that nothing maps fails with errImageNotMapped,
// unless it declares ports: then a probe server stands in for it.
func (a *Agent) containerLaunch(ctx context.Context, pod *corev1.Pod, c *corev1.Container, vols podVolumes, podDir string) (launch, error) {
	env, vars, err := environ(ctx, a.client, pod, c, a.api)
	if err != nil {
		return launch{}, err
	}
	l := launch{spec: containerinit.Spec{
		Root: filepath.Join(podDir, "containers", c.Name, "root"),
		Env:  env,
		Dir:  c.WorkingDir,
	}}
	if !pod.Spec.HostNetwork {
		l.spec.Hostname = podHostname(pod)
	}
	img, err := resolveImage(c.Image, a.cfg.Binaries)
	switch {
	case errors.Is(err, errImageNotMapped) && len(c.Ports) > 0:
		l.standIn = true
		l.spec.Argv = standInArgv(pod, c, a.cfg.Binaries[BinaryProbe])
	case err != nil:
		return launch{}, fmt.Errorf("container %s: %w", c.Name, err)
	default:
		for _, arg := range img.argv(c.Command, c.Args) {
			l.spec.Argv = append(l.spec.Argv, expand(arg, vars))
		}
		l.spec.Applets = img.applets
		for _, f := range img.files {
			l.spec.Mounts = append(l.spec.Mounts, containerinit.Mount{Source: f.binary, Target: f.path, ReadOnly: true})
		}
	}
	if len(l.spec.Argv) == 0 {
		return launch{}, fmt.Errorf("container %s: no command, and its image has no entrypoint", c.Name)
	}
	l.waitsForReady = l.standIn || path.Base(l.spec.Argv[0]) == ProbeBinaryName && len(l.spec.Argv) > 1 && l.spec.Argv[1] == "serve"
	for _, vm := range c.VolumeMounts {
		m, err := volumeMount(vm, vols, vars)
		if err != nil {
			return launch{}, fmt.Errorf("container %s: %w", c.Name, err)
		}
		l.spec.Mounts = append(l.spec.Mounts, m)
	}
	for _, f := range a.podFiles(pod) {
		l.spec.Mounts = append(l.spec.Mounts, containerinit.Mount{Source: filepath.Join(podDir, f.name), Target: f.target, ReadOnly: true})
	}
	return l, nil
}

// volumeMount is the bind mount of a volume (or of its subPath).
func volumeMount(vm corev1.VolumeMount, vols podVolumes, vars map[string]string) (containerinit.Mount, error) {
	src, ok := vols.paths[vm.Name]
	if !ok {
		return containerinit.Mount{}, fmt.Errorf("mounts the unknown volume %s", vm.Name)
	}
	if !path.IsAbs(vm.MountPath) {
		return containerinit.Mount{}, fmt.Errorf("volume %s: mountPath %q is not absolute", vm.Name, vm.MountPath)
	}
	sub := vm.SubPath
	if vm.SubPathExpr != "" {
		sub = expand(vm.SubPathExpr, vars)
	}
	if sub != "" {
		joined := filepath.Join(src, sub)
		if joined != src && !strings.HasPrefix(joined, src+string(filepath.Separator)) {
			return containerinit.Mount{}, fmt.Errorf("volume %s: subPath %q leaves the volume", vm.Name, sub)
		}
		if _, err := os.Stat(joined); os.IsNotExist(err) {
			if err := os.MkdirAll(joined, 0o755); err != nil {
				return containerinit.Mount{}, fmt.Errorf("volume %s: subPath: %w", vm.Name, err)
			}
		}
		src = joined
	}
	return containerinit.Mount{Source: src, Target: path.Clean(vm.MountPath), ReadOnly: vm.ReadOnly}, nil
}

// standInArgv runs a probe server on the container's declared ports,
// answering with the pod's identity.
func standInArgv(pod *corev1.Pod, c *corev1.Container, probeBinary string) []string {
	out := []string{probeBinary, "serve", "--identity", pod.Namespace + "/" + pod.Name, "--container", c.Name}
	for _, p := range c.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		out = append(out, "--port", fmt.Sprintf("%d/%s", p.ContainerPort, proto))
	}
	return out
}
