package containerinit

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// containerInitArg makes the test binary run Run, as
// netpolcheck-container-init SPEC does.
const containerInitArg = "container-init"

func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == containerInitArg {
		if err := Run(os.Args[2]); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(127)
		}
	}
	os.Exit(m.Run())
}

// TestContainerInit runs a shell through the shim as root: the container
// sees its files at their paths (also where the machine has no such path,
// and over the machine's resolv.conf), its own environment, hostname and
// empty /run, and the machine is left untouched.
func TestContainerInit(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount namespaces)")
	}
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("volume/key", "from the volume")
	resolv := write("resolv.conf", "nameserver 10.96.0.10\n")
	binary := write("binary", "#!/bin/sh\necho image file\n")
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	const (
		atRoot   = "/npc-test-image-file"
		underEtc = "/etc/npc-test-volume/nested"
	)
	spec := Spec{
		Root:     root,
		Hostname: "pod-a",
		Mounts: []Mount{
			{Source: binary, Target: atRoot, ReadOnly: true},
			{Source: filepath.Join(dir, "volume"), Target: underEtc},
			{Source: resolv, Target: "/etc/resolv.conf", ReadOnly: true},
		},
		Argv: []string{"sh", "-c", `echo "$(cat ` + underEtc + `/key)|$(` + atRoot + `)|$(cat /etc/resolv.conf)|$(hostname)|$(pwd)|$(ls -A /run | wc -l)|$(env | grep -v -e ^SHLVL= -e ^_= | sort | tr '\n' ' ')"`},
		Env:  []string{"PATH=/usr/bin:/bin", "ONLY=this"},
		Dir:  "/var/npc-test-workdir",
	}
	out := runContainerInit(t, dir, spec, syscall.CLONE_NEWNS|syscall.CLONE_NEWUTS)
	want := "from the volume|image file|nameserver 10.96.0.10|pod-a|/var/npc-test-workdir|0|ONLY=this PATH=/usr/bin:/bin PWD=/var/npc-test-workdir"
	if got := strings.TrimSpace(string(out)); got != strings.TrimSpace(want) {
		t.Errorf("the container saw\n%s\nwant\n%s", got, want)
	}
	for _, p := range []string{atRoot, "/etc/npc-test-volume", "/var/npc-test-workdir"} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("the machine has %s after the container ran: %v", p, err)
		}
	}
	if host, _ := os.Hostname(); host == "pod-a" {
		t.Error("the container changed the machine's hostname")
	}
	if data, _ := os.ReadFile("/etc/resolv.conf"); string(data) == "nameserver 10.96.0.10\n" {
		t.Error("the machine's resolv.conf was replaced")
	}
}

// TestContainerInitMountsADirectoryHoldingItsRoot mounts a source that holds
// the container's own root, as a hostPath of /var/lib holds the pods'
// directories on a node, after another mount: the container sees the
// source's files and starts.
func TestContainerInitMountsADirectoryHoldingItsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount namespaces)")
	}
	dir := t.TempDir()
	for _, sub := range []string{"volume", "pods/a/root"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "volume", "key"), []byte("from the volume"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := Spec{
		Root: filepath.Join(dir, "pods/a/root"),
		Mounts: []Mount{
			{Source: filepath.Join(dir, "volume"), Target: "/npc-test-volume"},
			{Source: dir, Target: "/npc-test-host/lib"},
		},
		Argv: []string{"sh", "-c", "cat /npc-test-volume/key; echo; cat /npc-test-host/lib/volume/key"},
		Env:  []string{"PATH=/usr/bin:/bin"},
	}
	out := runContainerInit(t, dir, spec, syscall.CLONE_NEWNS)
	if got := strings.TrimSpace(string(out)); got != "from the volume\nfrom the volume" {
		t.Errorf("the container saw %q", got)
	}
}

// runContainerInit runs the container-init shim on spec (written to dir) in
// new namespaces of cloneflags, with an empty environment, and returns its
// standard output; it fails the test when the shim fails.
func runContainerInit(t *testing.T, dir string, spec Spec, cloneflags uintptr) []byte {
	t.Helper()
	specFile := filepath.Join(dir, "spec.json")
	if err := Write(specFile, spec); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], containerInitArg, specFile)
	cmd.Env = []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: cloneflags}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("container: %v\n%s", err, stderr.String())
	}
	return out
}
