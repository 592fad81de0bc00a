package nodeagent

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/containernetworking/cni/libcni"
)

// errNetworkNotReady says the node has no CNI configuration yet: the node is
// NotReady (NetworkPluginNotReady) and pods that need a network wait, as
// with a kubelet whose container runtime has found no network.
var errNetworkNotReady = errors.New("network plugin not ready")

// netConfExtensions are the files a container runtime reads as network
// configurations.
var netConfExtensions = []string{".conf", ".conflist", ".json"}

// netConf returns the node's network configuration: the first file of
// CNIConfDir in lexical order, as containerd picks it. Once one is read the
// agent keeps it, so a pod's DEL uses the configuration of its ADD.
func (a *Agent) netConf() (*libcni.NetworkConfigList, error) {
	a.confMu.Lock()
	defer a.confMu.Unlock()
	if a.conf != nil {
		return a.conf, nil
	}
	conf, err := firstNetConf(a.cfg.CNIConfDir)
	if err != nil {
		return nil, err
	}
	a.conf = conf
	a.cfg.Log.Info("using the CNI configuration", "network", conf.Name)
	return conf, nil
}

// firstNetConf reads the first network configuration of dir in lexical
// order; errNetworkNotReady when dir holds none.
func firstNetConf(dir string) (*libcni.NetworkConfigList, error) {
	files, err := libcni.ConfFiles(dir, netConfExtensions)
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %v", errNetworkNotReady, dir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: no CNI configuration in %s", errNetworkNotReady, dir)
	}
	slices.Sort(files)
	first := files[0]
	if filepath.Ext(first) == ".conflist" {
		conf, err := libcni.ConfListFromFile(first)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", errNetworkNotReady, first, err)
		}
		return conf, nil
	}
	single, err := libcni.ConfFromFile(first)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errNetworkNotReady, first, err)
	}
	conf, err := libcni.ConfListFromConf(single)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errNetworkNotReady, first, err)
	}
	return conf, nil
}
