package containerinit

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func TestAppletLinks(t *testing.T) {
	tests := []struct {
		name, binary, binDir string
		names                []string
		want                 []appletLink
	}{
		{
			name: "Debian's busybox in /bin already", binary: "/usr/bin/busybox", binDir: "/usr/bin",
			names: []string{"sh", "wget", "busybox", "nc", "sh"},
			want:  []appletLink{{"sh", "/usr/bin/busybox"}, {"wget", "/usr/bin/busybox"}, {"nc", "/usr/bin/busybox"}},
		},
		{
			name: "a build elsewhere is linked as busybox too", binary: "/opt/bb/busybox", binDir: "/usr/bin",
			names: []string{"ping"},
			want:  []appletLink{{"ping", "/opt/bb/busybox"}, {"busybox", "/opt/bb/busybox"}},
		},
		{
			name: "names that are no file names are dropped", binary: "/usr/bin/busybox", binDir: "/usr/bin",
			names: []string{"", ".", "..", "../etc/passwd", "[["},
			want:  []appletLink{{"[[", "/usr/bin/busybox"}},
		},
	}
	for _, tt := range tests {
		if got := appletLinks(tt.binary, tt.binDir, tt.names); !slices.Equal(got, tt.want) {
			t.Errorf("%s: appletLinks = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestOverlayOptions(t *testing.T) {
	got := overlayOptions("/pods/a:b,c/applets", "/usr/bin")
	if want := `lowerdir=/pods/a\:b\,c/applets:/usr/bin`; got != want {
		t.Errorf("overlayOptions = %q, want %q", got, want)
	}
}

// TestContainerInitApplets runs a busybox container's shim as root: /bin/sh
// and wget are busybox's applets in the container, /bin is read-only there,
// and the machine's /bin is left as it was.
func TestContainerInitApplets(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount namespaces)")
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("needs Debian's busybox (apt-get install busybox)")
	}
	before, err := os.ReadDir("/bin")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	spec := Spec{
		Root: root, Applets: busybox,
		// The shell running the command is busybox itself; "touch" in /bin
		// fails on the read-only overlay.
		Argv: []string{"sh", "-c", `readlink /bin/sh; readlink /bin/wget; readlink /proc/$$/exe; touch /bin/npc-test 2>/dev/null && echo writable || echo read-only`},
		Env:  []string{"PATH=/usr/bin:/bin"},
	}
	out := runContainerInit(t, dir, spec, syscall.CLONE_NEWNS)
	want := busybox + "\n" + busybox + "\n" + busybox + "\nread-only"
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("the container saw\n%s\nwant\n%s", got, want)
	}
	after, err := os.ReadDir("/bin")
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("the machine's /bin had %d entries before the container ran and %d after", len(before), len(after))
	}
	if target, err := os.Readlink("/bin/sh"); err == nil && target == busybox {
		t.Error("the machine's /bin/sh is busybox after the container ran")
	}
}
