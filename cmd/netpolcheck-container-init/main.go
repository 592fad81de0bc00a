// Command netpolcheck-container-init is the local cluster's container shim:
// a node agent starts it in a container's new mount namespace with the
// container's spec file, and it builds the container's root and execs the
// container's command (package cluster/local/containerinit). It is not for
// people to run.
package main

import (
	"fmt"
	"os"

	"github.com/netpolcheck/netpolcheck/cluster/local/containerinit"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: netpolcheck-container-init SPEC_FILE (run by the local cluster's node agents)")
		os.Exit(2)
	}
	if err := containerinit.Run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(127)
	}
}
