package nodeagent

import (
	"bytes"
	"errors"
	"io"
	"os/exec"
	"testing"
	"time"

	"github.com/netpolcheck/netpolcheck/cluster/local/kubeletapi"
)

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// An exec whose client keeps stdin open (WebSocket protocols before v5
// cannot close it; an interactive kubectl exec -i) ends when the command
// exits.
func TestExecEndsWhenTheCommandExitsWithStdinOpen(t *testing.T) {
	stdinR, stdinW := io.Pipe()
	defer stdinW.Close()
	var stdout bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- runWithStreams(exec.Command("sh", "-c", "echo out; exit 4"), kubeletapi.Streams{Stdin: stdinR, Stdout: nopWriteCloser{&stdout}})
	}()
	select {
	case err := <-done:
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) || exitErr.ExitCode() != 4 || stdout.String() != "out\n" {
			t.Errorf("err %v, stdout %q; want exit code 4, out", err, stdout.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the exec did not end after its command exited")
	}
}
