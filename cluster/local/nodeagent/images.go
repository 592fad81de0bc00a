package nodeagent

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
)

// Binary names of Config.Binaries: the node's builds of what the mapped
// images hold.
const (
	BinaryProbe    = "netpolcheck-probe"
	BinaryCLI      = "netpolcheck"
	BinaryCNI      = "netpolcheck-cni"
	BinaryRoutes   = "netpolcheck-routes"
	BinaryEnforcer = "netpolcheck-enforcer"
	// BinarySuites is the directory of the compiled suites (bin/suites).
	BinarySuites  = "netpolcheck-suites"
	BinaryAgnhost = "agnhost"
	BinaryCoreDNS = "coredns"
	BinaryBusybox = "busybox"
	// BinaryKubeRouter is kube-router, built from its module at the local
	// cluster's pin.
	BinaryKubeRouter = "kube-router"
	// BinaryFlanneld and BinaryFlannelInstallConf are Flannel's flanneld
	// and install-conf, built from its module at the local cluster's pin.
	BinaryFlanneld           = "flanneld"
	BinaryFlannelInstallConf = "flannel-install-conf"
	// BinarySubnetBridge is the project's netpolcheck-subnet-bridge, the
	// stand-in for Flannel's CNI plugin.
	BinarySubnetBridge = "netpolcheck-subnet-bridge"
)

// image is how the local cluster runs the images of some repositories: the
// files the image has (path in the image -> name in Config.Binaries), each
// bind-mounted at its path in the container's root, which is otherwise this
// machine's; and the image's ENTRYPOINT and CMD.
type image struct {
	// repositories are matched against an image reference's repository
	// without its registry, tag or digest; a one-element repository also
	// matches the last element of a longer one (netpolcheck matches
	// ghcr.io/netpolcheck/netpolcheck:dev and a kind-loaded netpolcheck:dev).
	repositories []string
	files        map[string]string
	// optional are files (path -> name) the image has when the node was
	// given them, and lacks otherwise.
	optional map[string]string
	// applets names, in Config.Binaries, a multi-call binary whose applets
	// the image has in /bin (see applets.go).
	applets    string
	entrypoint []string
	cmd        []string
}

// images is the table of images the local cluster maps (docs/local.md lists
// it).
func images() []image {
	return []image{
		{
			// The project's image: every netpolcheck binary at /.
			repositories: []string{"netpolcheck/netpolcheck", "netpolcheck"},
			files: map[string]string{
				"/" + BinaryProbe: BinaryProbe, "/" + BinaryCLI: BinaryCLI, "/" + BinaryCNI: BinaryCNI,
				"/" + BinaryRoutes: BinaryRoutes, "/" + BinaryEnforcer: BinaryEnforcer,
			},
			// The compiled suites next to /netpolcheck, as in the image,
			// for netpolcheck run --in-cluster.
			optional: map[string]string{"/suites": BinarySuites},
			cmd:      []string{"bash"},
		},
		{
			// registry.k8s.io/e2e-test-images/agnhost, built at the control
			// plane's release whatever the tag (agnhost-2 is a link to it in
			// the image).
			repositories: []string{"e2e-test-images/agnhost", "kubernetes-e2e-test-images/agnhost", "agnhost"},
			files:        map[string]string{"/agnhost": BinaryAgnhost, "/agnhost-2": BinaryAgnhost},
			entrypoint:   []string{"/agnhost"},
			cmd:          []string{"pause"},
		},
		{
			// registry.k8s.io/coredns/coredns, at the CoreDNS release the
			// local cluster builds whatever the tag.
			repositories: []string{"coredns/coredns", "coredns"},
			files:        map[string]string{"/coredns": BinaryCoreDNS},
			entrypoint:   []string{"/coredns"},
		},
		{
			// docker.io/cloudnativelabs/kube-router, at the kube-router release
			// the local cluster builds whatever the tag. The tools it execs
			// (iptables, iptables-save/restore, ipset; /bin/sh for its
			// manifests' init containers) come from this machine's root.
			repositories: []string{"cloudnativelabs/kube-router"},
			files:        map[string]string{"/usr/local/bin/kube-router": BinaryKubeRouter},
			entrypoint:   []string{"/usr/local/bin/kube-router"},
		},
		{
			// ghcr.io/flannel-io/flannel, at the Flannel release the local
			// cluster builds whatever the tag: flanneld and install-conf (which
			// its manifest's install-cni init container runs). The tools
			// flanneld execs (iptables) come from this machine's root.
			repositories: []string{"flannel-io/flannel"},
			files: map[string]string{
				"/opt/bin/flanneld": BinaryFlanneld, "/opt/bin/install-conf": BinaryFlannelInstallConf,
			},
			entrypoint: []string{"/opt/bin/flanneld"},
		},
		{
			// ghcr.io/flannel-io/flannel-cni-plugin holds Flannel's CNI plugin
			// at /flannel, which the local cluster does not build: the
			// project's netpolcheck-subnet-bridge stands in for it (it
			// configures the bridge delegate from the node's subnet file as
			// Flannel's plugin does; docs/local.md). The manifest's init
			// container copies it (cp from this machine's root) to the node's
			// /opt/cni/bin/flannel, where the conflist's type flannel finds it.
			repositories: []string{"flannel-io/flannel-cni-plugin"},
			files:        map[string]string{"/flannel": BinarySubnetBridge},
		},
		{
			// docker.io/library/busybox: Debian's busybox, its applets
			// (sh, wget, nc, ping, ...) in the container's /bin.
			repositories: []string{"busybox"},
			applets:      BinaryBusybox,
			cmd:          []string{"sh"},
		},
	}
}

// errImageNotMapped is the cause of a container whose image the table does
// not map (the kubelet's ErrImagePull).
var errImageNotMapped = errors.New("image not mapped")

// resolvedImage is a mapped image with the host paths of its files.
type resolvedImage struct {
	// files maps a path in the image to the binary on this machine, sorted
	// by path.
	files []imageFile
	// applets is the multi-call binary on this machine whose applets the
	// container has in /bin (empty: none).
	applets    string
	entrypoint []string
	cmd        []string
}

type imageFile struct{ path, binary string }

// resolveImage finds ref in the table and the node's binaries of its files.
func resolveImage(ref string, binaries map[string]string) (resolvedImage, error) {
	repo := repository(ref)
	for _, im := range images() {
		if !matches(im.repositories, repo) {
			continue
		}
		var r resolvedImage
		for p, name := range im.files {
			bin, err := imageBinary(ref, name, binaries)
			if err != nil {
				return resolvedImage{}, err
			}
			r.files = append(r.files, imageFile{path: p, binary: bin})
		}
		for p, name := range im.optional {
			if bin, ok := binaries[name]; ok {
				r.files = append(r.files, imageFile{path: p, binary: bin})
			}
		}
		if im.applets != "" {
			bin, err := imageBinary(ref, im.applets, binaries)
			if err != nil {
				return resolvedImage{}, err
			}
			r.applets = bin
		}
		sort.Slice(r.files, func(i, j int) bool { return r.files[i].path < r.files[j].path })
		r.entrypoint, r.cmd = im.entrypoint, im.cmd
		return r, nil
	}
	return resolvedImage{}, fmt.Errorf("%w: the local cluster runs no images and maps none to %s (repository %s): use one of the images listed in docs/local.md, or declare the container's ports to have a probe server stand in for it", errImageNotMapped, ref, repo)
}

// imageBinary is the node's binary named name, which image ref needs.
func imageBinary(ref, name string, binaries map[string]string) (string, error) {
	bin, ok := binaries[name]
	if !ok {
		return "", fmt.Errorf("%w: %s maps to %s, which this node was not given (node-agent --image-binary %s=PATH)", errImageNotMapped, ref, name, name)
	}
	return bin, nil
}

func matches(repositories []string, repo string) bool {
	for _, r := range repositories {
		if repo == r || (!strings.Contains(r, "/") && path.Base(repo) == r) {
			return true
		}
	}
	return false
}

// repository is an image reference's repository path without its registry,
// tag or digest (and without Docker Hub's library/ for official images):
// registry.k8s.io/e2e-test-images/agnhost:2.53 -> e2e-test-images/agnhost.
func repository(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		ref = ref[:i]
	}
	if first, rest, ok := strings.Cut(ref, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		ref = rest
	}
	return strings.TrimPrefix(ref, "library/")
}

// argv is the command line of a container of the image, as the kubelet
// composes it: the container's command (else the image's entrypoint), then
// the container's args (else, without a command, the image's cmd).
func (r resolvedImage) argv(command, args []string) []string {
	if len(command) > 0 {
		return append(append([]string(nil), command...), args...)
	}
	if len(args) > 0 {
		return append(append([]string(nil), r.entrypoint...), args...)
	}
	return append(append([]string(nil), r.entrypoint...), r.cmd...)
}
