package nodeagent

import (
	"os"
	"testing"

	"github.com/netpolcheck/netpolcheck/cluster/local/containerinit"
)

// containerInitArg makes the test binary the container-init shim
// (containerinit.Run), as netpolcheck-container-init is: testContainerInit
// is the shim's command line for the agents of these tests.
const containerInitArg = "container-init"

func testContainerInit() []string { return []string{os.Args[0], containerInitArg} }

func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == containerInitArg {
		if err := containerinit.Run(os.Args[2]); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(127)
		}
	}
	os.Exit(m.Run())
}
