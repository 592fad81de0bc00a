// Command netpolcheck-subnet-bridge is the CNI plugin that attaches pods to
// a node's Flannel network on the local cluster, delegating to the bridge
// plugin as Flannel's own plugin does; see package
// cluster/local/subnetbridge.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/netpolcheck/netpolcheck/cluster/local/subnetbridge"
)

func main() {
	skel.PluginMainFuncs(skel.CNIFuncs{Add: add, Del: del, Check: check}, version.All,
		"netpolcheck-subnet-bridge: bridge delegate from flanneld's subnet file")
}

func add(args *skel.CmdArgs) error {
	conf, err := subnetbridge.ParseConf(args.StdinData)
	if err != nil {
		return err
	}
	env, err := subnetbridge.ReadSubnetEnv(conf.SubnetFile)
	if err != nil {
		return err
	}
	delegate, err := subnetbridge.Delegate(conf, env)
	if err != nil {
		return err
	}
	data, err := json.Marshal(delegate)
	if err != nil {
		return fmt.Errorf("encoding the delegate configuration: %w", err)
	}
	if err := subnetbridge.SaveDelegate(conf.DataDir, args.ContainerID, data); err != nil {
		return err
	}
	result, err := invoke.DelegateAdd(context.Background(), delegate["type"].(string), data, nil)
	if err != nil {
		return fmt.Errorf("delegate ADD: %w", err)
	}
	return result.Print()
}

func del(args *skel.CmdArgs) error {
	conf, err := subnetbridge.ParseConf(args.StdinData)
	if err != nil {
		return err
	}
	data, pluginType, err := subnetbridge.LoadDelegate(conf.DataDir, args.ContainerID)
	if errors.Is(err, os.ErrNotExist) {
		return nil // never added, or already deleted
	}
	if err != nil {
		return err
	}
	if err := invoke.DelegateDel(context.Background(), pluginType, data, nil); err != nil {
		return fmt.Errorf("delegate DEL: %w", err)
	}
	return subnetbridge.ForgetDelegate(conf.DataDir, args.ContainerID)
}

// check has nothing of its own to verify: the delegate did the work.
func check(*skel.CmdArgs) error { return nil }
