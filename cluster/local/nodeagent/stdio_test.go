package nodeagent

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/netpolcheck/netpolcheck/cluster/local/kubeletapi"
)

func TestContainerLogWritesCRIEntries(t *testing.T) {
	path := logPath(filepath.Join(t.TempDir(), "ns_pod_uid", "main"), 2)
	if filepath.Base(path) != "2.log" {
		t.Fatalf("log of the third run: %s", path)
	}
	log, err := openContainerLog(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	stdout := log.stream(kubeletapi.StreamStdout, func(l string) { lines = append(lines, l) })
	stderr := log.stream(kubeletapi.StreamStderr, nil)
	var attachedOut, attachedErr bytes.Buffer
	detach := log.attach(&attachment{stdout: &attachedOut, stderr: &attachedErr})
	for _, w := range []struct {
		to   interface{ Write([]byte) (int, error) }
		text string
	}{{stdout, "rea"}, {stdout, "dy\nsecond\n"}, {stderr, "oops\n"}} {
		if _, err := w.to.Write([]byte(w.text)); err != nil {
			t.Fatal(err)
		}
	}
	detach()
	if _, err := stdout.Write([]byte("after\n")); err != nil {
		t.Fatal(err)
	}
	if err := log.close(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(lines, ",") != "ready,second,after" {
		t.Errorf("lines seen: %q", lines)
	}
	if attachedOut.String() != "ready\nsecond\n" || attachedErr.String() != "oops\n" {
		t.Errorf("attached client got %q and %q", attachedOut.String(), attachedErr.String())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	entry := `\d{4}-\d\d-\d\dT[0-9:.]+Z `
	want := regexp.MustCompile(`^` + entry + `stdout P rea\n` + entry + `stdout F dy\n` + entry + `stdout F second\n` +
		entry + `stderr F oops\n` + entry + `stdout F after\n$`)
	if !want.Match(data) {
		t.Errorf("log file:\n%s", data)
	}
}

// TestContainerLogHoldsOutputForTheFirstAttach: a stdin-once container's
// output written before anyone attached reaches the first attached client,
// in order, and a later client gets only what follows its attach.
func TestContainerLogHoldsOutputForTheFirstAttach(t *testing.T) {
	log, err := openContainerLog(filepath.Join(t.TempDir(), "0.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.close()
	log.holdUntilAttached()
	stdout, stderr := log.stream(kubeletapi.StreamStdout, nil), log.stream(kubeletapi.StreamStderr, nil)
	for _, w := range []struct {
		to   interface{ Write([]byte) (int, error) }
		text string
	}{{stdout, "early\n"}, {stderr, "warn\n"}, {stdout, "more\n"}} {
		if _, err := w.to.Write([]byte(w.text)); err != nil {
			t.Fatal(err)
		}
	}
	var first, firstErr, second bytes.Buffer
	detach := log.attach(&attachment{stdout: &first, stderr: &firstErr})
	if _, err := stdout.Write([]byte("live\n")); err != nil {
		t.Fatal(err)
	}
	detach()
	detach = log.attach(&attachment{stdout: &second})
	if _, err := stdout.Write([]byte("last\n")); err != nil {
		t.Fatal(err)
	}
	detach()
	if first.String() != "early\nmore\nlive\n" || firstErr.String() != "warn\n" {
		t.Errorf("first client got %q and %q", first.String(), firstErr.String())
	}
	if second.String() != "last\n" {
		t.Errorf("second client got %q, want only what followed its attach", second.String())
	}
}

// TestAttachAfterALogReadGetsWhatFollows: kubectl run -i reads the log, then
// attaches; the attach then gets only what the read could not have (what was
// written after it), so the output shows once.
func TestAttachAfterALogReadGetsWhatFollows(t *testing.T) {
	log, err := openContainerLog(filepath.Join(t.TempDir(), "0.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.close()
	log.holdUntilAttached()
	stdout := log.stream(kubeletapi.StreamStdout, nil)
	if _, err := stdout.Write([]byte("in the log read\n")); err != nil {
		t.Fatal(err)
	}
	log.logRead()
	if _, err := stdout.Write([]byte("after the read\n")); err != nil {
		t.Fatal(err)
	}
	var attached bytes.Buffer
	detach := log.attach(&attachment{stdout: &attached})
	detach()
	if attached.String() != "after the read\n" {
		t.Errorf("the attach got %q, want only what followed the log read", attached.String())
	}
}
