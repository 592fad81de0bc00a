package nodeagent

import (
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// ProbeBinaryName is the executable of the probe image. A container whose
// command runs it is started as written, with the local binary.
const ProbeBinaryName = "netpolcheck-probe"

// launch is how one container runs on this machine.
type launch struct {
	argv []string
	// dir is the working directory; empty means the agent's.
	dir string
	// mounts are the volumes to materialize before the start.
	mounts []mount
}

// mount is a volume a container mounts, materialized under the pod's root.
type mount struct {
	volume    *corev1.Volume
	mountPath string
}

// containerLaunch returns how to run a container on this machine. The local
// cluster runs no images:
//   - a container whose command runs netpolcheck-probe runs the local binary
//     with the container's arguments, expanded as the kubelet expands them;
//   - a container whose command is one of Config.Commands (by base name, such
//     as coredns) runs that local binary with its expanded arguments, inside
//     the pod's root directory: its configMap, secret and emptyDir volumes
//     are materialized at root+mountPath, every argument that starts with a
//     mount path is rewritten to lie under root, and it runs in
//     root+workingDir (root without one);
//   - any other container is stood in for by a probe server answering on the
//     container's declared ports, so that a pod of any image takes part in
//     the network as it would in a cluster; such a container without ports
//     runs nothing (nil argv).
func containerLaunch(pod *corev1.Pod, c *corev1.Container, probeBinary string, commands map[string]string, root string) (launch, error) {
	env, err := containerEnv(pod, c)
	if err != nil {
		return launch{}, err
	}
	argv := append(append([]string(nil), c.Command...), c.Args...)
	if len(argv) > 0 && path.Base(argv[0]) == ProbeBinaryName {
		out := []string{probeBinary}
		for _, a := range argv[1:] {
			out = append(out, expand(a, env))
		}
		return launch{argv: out}, nil
	}
	if len(argv) > 0 {
		if binary, ok := commands[path.Base(argv[0])]; ok {
			return commandLaunch(pod, c, binary, argv[1:], env, root)
		}
	}
	if len(c.Ports) == 0 {
		return launch{}, nil
	}
	out := []string{probeBinary, "serve", "--identity", pod.Namespace + "/" + pod.Name, "--container", c.Name}
	for _, p := range c.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		out = append(out, "--port", fmt.Sprintf("%d/%s", p.ContainerPort, proto))
	}
	return launch{argv: out}, nil
}

// commandLaunch runs a local binary for a container, in the pod's root.
func commandLaunch(pod *corev1.Pod, c *corev1.Container, binary string, args []string, env map[string]string, root string) (launch, error) {
	volumes := map[string]*corev1.Volume{}
	for i := range pod.Spec.Volumes {
		volumes[pod.Spec.Volumes[i].Name] = &pod.Spec.Volumes[i]
	}
	l := launch{argv: []string{binary}, dir: filepath.Join(root, c.WorkingDir)}
	for _, vm := range c.VolumeMounts {
		v, ok := volumes[vm.Name]
		if !ok {
			return launch{}, fmt.Errorf("container %s mounts the unknown volume %s", c.Name, vm.Name)
		}
		if v.ConfigMap == nil && v.Secret == nil && v.EmptyDir == nil {
			continue // not materialized: a projected service account token, for example
		}
		if !path.IsAbs(vm.MountPath) || vm.SubPath != "" {
			return launch{}, fmt.Errorf("container %s: volume %s: the local cluster needs an absolute mountPath without subPath", c.Name, vm.Name)
		}
		l.mounts = append(l.mounts, mount{volume: v, mountPath: path.Clean(vm.MountPath)})
	}
	// The longest mount path first: it decides for nested mounts.
	sort.Slice(l.mounts, func(i, j int) bool { return len(l.mounts[i].mountPath) > len(l.mounts[j].mountPath) })
	for _, a := range args {
		a = expand(a, env)
		for _, m := range l.mounts {
			if a == m.mountPath || strings.HasPrefix(a, m.mountPath+"/") {
				a = filepath.Join(root, a)
				break
			}
		}
		l.argv = append(l.argv, a)
	}
	return l, nil
}

// containerEnv resolves the container's environment: literal values and the
// downward-API fields a probe pod uses.
func containerEnv(pod *corev1.Pod, c *corev1.Container) (map[string]string, error) {
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = expand(e.Value, env)
		case e.ValueFrom.FieldRef != nil:
			v, err := fieldValue(pod, e.ValueFrom.FieldRef.FieldPath)
			if err != nil {
				return nil, fmt.Errorf("container %s: env %s: %w", c.Name, e.Name, err)
			}
			env[e.Name] = v
		default:
			return nil, fmt.Errorf("container %s: env %s: only values and fieldRef are supported by the local cluster", c.Name, e.Name)
		}
	}
	return env, nil
}

func fieldValue(pod *corev1.Pod, fieldPath string) (string, error) {
	switch fieldPath {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP":
		return pod.Status.PodIP, nil
	case "status.hostIP":
		return pod.Status.HostIP, nil
	}
	if key, ok := strings.CutPrefix(fieldPath, "metadata.labels["); ok {
		if k, err := strconv.Unquote(strings.TrimSuffix(key, "]")); err == nil {
			return pod.Labels[k], nil
		}
	}
	return "", fmt.Errorf("field %q is not supported by the local cluster", fieldPath)
}

// expand replaces $(VAR) with the variable's value, leaves unknown
// references as they are and turns $$ into $, as the kubelet does.
func expand(s string, env map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := env[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}
