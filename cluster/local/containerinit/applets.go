package containerinit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// A busybox image has one multi-call binary and its applets (sh, wget, nc,
// ping, ...) as links to it in /bin. The container's root is this machine's,
// whose /bin must stay as it is, so the shim lays the applets over it in the
// container's mount namespace only: a read-only overlayfs on the container's
// /bin (on Debian 12, with merged /usr, /usr/bin) whose upper lower layer is a
// tmpfs holding a link per applet, and whose other lower layer is the
// machine's directory. In the container /bin/sh, /bin/wget, ... are the
// applets; the machine's other commands are still there beside them.

// appletLink is one entry of the applets' layer: name -> target.
type appletLink struct{ name, target string }

// appletLinks are the links of binary's applets (names, as binary --list
// prints them) in binDir, the directory /bin is, and of the binary itself as
// busybox: every link points at binary, and none at itself (Debian's busybox
// is /usr/bin/busybox already).
func appletLinks(binary, binDir string, names []string) []appletLink {
	var links []appletLink
	seen := map[string]bool{}
	for _, name := range append(names, "busybox") {
		if name == "" || strings.ContainsRune(name, '/') || name == "." || name == ".." || seen[name] {
			continue
		}
		seen[name] = true
		if filepath.Join(binDir, name) == binary {
			continue
		}
		links = append(links, appletLink{name: name, target: binary})
	}
	return links
}

// overlayOptions is the mount data of a read-only overlay of the layers,
// topmost first (overlayfs takes ':' between layers and '\' escapes).
func overlayOptions(layers ...string) string {
	escaped := make([]string, len(layers))
	for i, l := range layers {
		escaped[i] = strings.NewReplacer(`\`, `\\`, `:`, `\:`, `,`, `\,`).Replace(l)
	}
	return "lowerdir=" + strings.Join(escaped, ":")
}

// overlayApplets lays the applets of binary over the /bin of the container
// root being built at root, with scratch as a directory of its own to put
// the applets' layer in (see the comment at the top).
func overlayApplets(root, scratch, binary string) error {
	out, err := exec.Command(binary, "--list").Output()
	if err != nil {
		return fmt.Errorf("listing the applets of %s: %w", binary, err)
	}
	binDir, err := filepath.EvalSymlinks("/bin")
	if err != nil {
		return fmt.Errorf("applets: %w", err)
	}
	layer := filepath.Join(scratch, "applets")
	if err := os.Mkdir(layer, 0o755); err != nil {
		return fmt.Errorf("applets: %w", err)
	}
	if err := unix.Mount("tmpfs", layer, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return fmt.Errorf("applets: mounting their layer: %w", err)
	}
	for _, l := range appletLinks(binary, binDir, strings.Fields(string(out))) {
		if err := os.Symlink(l.target, filepath.Join(layer, l.name)); err != nil {
			return fmt.Errorf("applets: %w", err)
		}
	}
	target := filepath.Join(root, binDir)
	if err := unix.Mount("overlay", target, "overlay", unix.MS_RDONLY, overlayOptions(layer, binDir)); err != nil {
		return fmt.Errorf("applets: mounting the overlay on %s: %w", binDir, err)
	}
	// The overlay holds its layer; the tmpfs's own mount is not needed.
	if err := unix.Unmount(layer, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("applets: %w", err)
	}
	return os.Remove(layer)
}
