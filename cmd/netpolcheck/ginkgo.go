package main

import (
	"context"
	"fmt"
	"io"

	ginkgocommand "github.com/onsi/ginkgo/v2/ginkgo/command"
	ginkgorun "github.com/onsi/ginkgo/v2/ginkgo/run"
	"github.com/onsi/ginkgo/v2/types"
)

// runGinkgo is the Ginkgo CLI's run command, from the ginkgo library this
// module's suites are built with (so the CLI and the compiled suites are
// always of one version): `netpolcheck run` starts it as a child process to
// drive the compiled suites in parallel (`ginkgo -p --procs N SUITE.test`).
// It exits the process when done, as the ginkgo command does.
func runGinkgo(_ context.Context, args []string, _, _ io.Writer) error {
	program := ginkgocommand.Program{
		Name:           "ginkgo",
		Heading:        fmt.Sprintf("Ginkgo Version %s (the run command, in netpolcheck)", types.VERSION),
		DefaultCommand: ginkgorun.BuildRunCommand(),
	}
	program.RunAndExit(append([]string{"ginkgo"}, args...))
	return nil
}
