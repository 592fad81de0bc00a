// Package containerinit is the local cluster's container shim: run by a node
// agent in a container's new mount namespace, it builds the container's root
// and execs the container's command. It is its own small command
// (netpolcheck-container-init), started once per container, so it imports
// nothing but the standard library and x/sys: a start costs little.
package containerinit

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// A container runs in its own mount namespace whose root is this machine's
// with the container's files mounted in: its volumes, its resolv.conf and
// hosts, and its image's binaries. Go cannot mount between fork and exec, so
// the agent starts a shim (Run, as netpolcheck-container-init) in a new
// mount namespace, which builds the root from a Spec and then execs the
// container's command.
//
// The root is a tmpfs (Spec.Root) holding a recursive bind mount of
// every top-level entry of this machine's / (symlinks copied) but /run,
// which is an empty tmpfs of the container's own, so the container sees the
// machine's files, submounts included, and anything it mounts lands in its
// own namespace. A mount whose target does not exist
// (/agnhost, /etc/coredns, /var/run/secrets/...) needs a mount point, which
// must not be created in the machine's directories: its deepest existing
// ancestor is shadowed first (a tmpfs over it, holding recursive bind
// mounts of the ancestor's entries), and the mount point is created in that
// tmpfs. The root's own tmpfs counts as shadowed.

// Spec is what Run sets up before it execs the command.
type Spec struct {
	// Root is an empty directory the shim mounts the container's root on.
	Root string `json:"root"`
	// Hostname is set in a new UTS namespace (empty: the node's).
	Hostname string  `json:"hostname,omitempty"`
	Mounts   []Mount `json:"mounts"`
	// Argv is the command; a first element without a slash is looked up in
	// the PATH of Env inside the root, as a container runtime does.
	Argv []string `json:"argv"`
	// Applets is a multi-call binary (busybox) whose applets the shim lays
	// over the container's /bin (applets.go); empty: none.
	Applets string `json:"applets,omitempty"`
	// Env is the process's whole environment.
	Env []string `json:"env"`
	// Dir is the working directory inside the root (default /), created
	// when missing.
	Dir string `json:"dir,omitempty"`
}

// Mount is one bind mount of a host path at a path in the container.
type Mount struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly,omitempty"`
}

// Write writes spec to file, for Run.
func Write(file string, spec Spec) error {
	data, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	if err := os.WriteFile(file, data, 0o600); err != nil {
		return fmt.Errorf("writing the container spec: %w", err)
	}
	return nil
}

// Run runs in the shim's new mount namespace: it builds the
// container's root as the spec in specFile says, enters it and execs the
// command. It returns only on error.
func Run(specFile string) error {
	data, err := os.ReadFile(specFile)
	if err != nil {
		return fmt.Errorf("container init: %w", err)
	}
	var spec Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return fmt.Errorf("container init: reading %s: %w", specFile, err)
	}
	if len(spec.Argv) == 0 {
		return errors.New("container init: no command")
	}
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return fmt.Errorf("container init: setting the hostname: %w", err)
		}
	}
	if err := buildRoot(spec); err != nil {
		return fmt.Errorf("container init: %w", err)
	}
	exe, err := lookPath(spec.Argv[0], spec.Env)
	if err != nil {
		return fmt.Errorf("container init: %w", err)
	}
	if err := syscall.Exec(exe, spec.Argv, spec.Env); err != nil {
		return fmt.Errorf("container init: exec %s: %w", exe, err)
	}
	return nil
}

// stagingDir is the shim's scratch directory inside the new root: the
// applets' layer and the entries of a directory it shadows stay there while
// it builds them.
const stagingDir = "/.netpolcheck-staging"

// buildRoot makes the container's root, mounts its files in, chroots into
// it and enters the working directory (created when missing).
func buildRoot(spec Spec) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	mounts := append([]Mount(nil), spec.Mounts...)
	// Parents before children, as container runtimes mount.
	sort.SliceStable(mounts, func(i, j int) bool { return depth(mounts[i].Target) < depth(mounts[j].Target) })
	// Every source is cloned before the root exists (a source may lie
	// under a later mount's target, and a source may hold the root itself,
	// as a hostPath of /var/lib holds the pods' directories): the clones
	// are detached trees, moved into place once inside the root.
	sources, err := cloneSources(mounts)
	if err != nil {
		return err
	}
	defer closeSources(sources)
	if err := unix.Mount("tmpfs", spec.Root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return fmt.Errorf("mounting the root: %w", err)
	}
	if err := bindEntries("/", spec.Root, "run"); err != nil {
		return err
	}
	// A container has a /run of its own, as it has from its image: the
	// machine's runtime state (sockets, the network namespaces' mounts)
	// is not part of the filesystem it shares.
	run := filepath.Join(spec.Root, "run")
	if err := os.Mkdir(run, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", run, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return fmt.Errorf("mounting /run: %w", err)
	}
	staged := filepath.Join(spec.Root, stagingDir)
	if err := os.Mkdir(staged, 0o700); err != nil {
		return err
	}
	if spec.Applets != "" {
		if err := overlayApplets(spec.Root, staged, spec.Applets); err != nil {
			return err
		}
	}
	if err := unix.Chroot(spec.Root); err != nil {
		return fmt.Errorf("entering the root: %w", err)
	}
	if err := os.Chdir("/"); err != nil {
		return err
	}
	shadowed := map[string]bool{"/": true}
	for i, m := range mounts {
		target, err := mountPoint(m.Target, sources[i].dir, shadowed)
		if err != nil {
			return fmt.Errorf("mount point %s: %w", m.Target, err)
		}
		if err := unix.MoveMount(int(sources[i].tree.Fd()), "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return fmt.Errorf("mounting %s at %s: %w", m.Source, m.Target, err)
		}
		if m.ReadOnly {
			if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
				return fmt.Errorf("making %s read-only: %w", m.Target, err)
			}
		}
	}
	dir := spec.Dir
	if dir == "" {
		dir = "/"
	}
	dir, err = mountPoint(dir, true, shadowed)
	if err != nil {
		return fmt.Errorf("working directory %s: %w", spec.Dir, err)
	}
	if err := os.RemoveAll(stagingDir); err != nil {
		return err
	}
	return os.Chdir(dir)
}

// clonedSource is a detached recursive copy of a mount's source.
type clonedSource struct {
	tree *os.File
	dir  bool
}

func cloneSources(mounts []Mount) (sources []clonedSource, err error) {
	defer func() {
		if err != nil {
			closeSources(sources)
		}
	}()
	for _, m := range mounts {
		st, err := os.Stat(m.Source)
		if err != nil {
			return sources, fmt.Errorf("mount source: %w", err)
		}
		fd, err := unix.OpenTree(unix.AT_FDCWD, m.Source, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
		if err != nil {
			return sources, fmt.Errorf("cloning the mount source %s: %w", m.Source, err)
		}
		sources = append(sources, clonedSource{tree: os.NewFile(uintptr(fd), m.Source), dir: st.IsDir()})
	}
	return sources, nil
}

func closeSources(sources []clonedSource) {
	for _, s := range sources {
		s.tree.Close()
	}
}

func depth(p string) int { return strings.Count(path.Clean("/"+p), "/") }

// bindEntries fills dir (a fresh tmpfs) with the entries of src except
// skip: recursive bind mounts of its directories and files, copies of its
// symlinks.
func bindEntries(src, dir string, skip ...string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("reading %s: %w", src, err)
	}
	for _, e := range entries {
		if slices.Contains(skip, e.Name()) {
			continue
		}
		from, to := filepath.Join(src, e.Name()), filepath.Join(dir, e.Name())
		if e.Type()&os.ModeSymlink != 0 {
			link, err := os.Readlink(from)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, to); err != nil {
				return err
			}
			continue
		}
		if err := makeMountPoint(to, e.IsDir()); err != nil {
			return err
		}
		if err := unix.Mount(from, to, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("binding %s: %w", from, err)
		}
	}
	return nil
}

func makeMountPoint(p string, dir bool) error {
	if dir {
		return os.Mkdir(p, 0o755)
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// mountPoint returns the path to mount target on (inside the root),
// creating it when missing in a shadowed directory (see the comment at the
// top), shadowing its deepest existing ancestor first when needed.
func mountPoint(target string, dir bool, shadowed map[string]bool) (string, error) {
	target = path.Clean("/" + target)
	if st, err := os.Stat(target); err == nil {
		if st.IsDir() != dir {
			return "", fmt.Errorf("exists and is not a %s", kind(dir))
		}
		return filepath.EvalSymlinks(target)
	}
	ancestor, missing := target, []string(nil)
	for {
		missing = append([]string{path.Base(ancestor)}, missing...)
		ancestor = path.Dir(ancestor)
		if _, err := os.Stat(ancestor); err == nil {
			break
		}
	}
	real, err := filepath.EvalSymlinks(ancestor)
	if err != nil {
		return "", err
	}
	if !shadowed[real] {
		if err := shadow(real); err != nil {
			return "", err
		}
		shadowed[real] = true
	}
	p := real
	for i, name := range missing {
		p = filepath.Join(p, name)
		last := i == len(missing)-1
		if err := makeMountPoint(p, !last || dir); err != nil {
			return "", err
		}
		if !last {
			shadowed[p] = true
		}
	}
	return p, nil
}

func kind(dir bool) string {
	if dir {
		return "directory"
	}
	return "file"
}

// shadow mounts a tmpfs over dir that holds bind mounts of dir's entries,
// so that new entries can be created in it without touching the machine.
func shadow(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	saved, err := os.MkdirTemp(stagingDir, "shadow-")
	if err != nil {
		return err
	}
	if err := unix.Mount(dir, saved, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("shadowing %s: %w", dir, err)
	}
	mode := fmt.Sprintf("mode=%o", st.Mode().Perm())
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, mode); err != nil {
		return fmt.Errorf("shadowing %s: %w", dir, err)
	}
	if err := bindEntries(saved, dir); err != nil {
		return fmt.Errorf("shadowing %s: %w", dir, err)
	}
	if err := unix.Unmount(saved, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("shadowing %s: %w", dir, err)
	}
	return os.Remove(saved)
}

// lookPath finds a command as a container runtime does: a name with a slash
// as it is, any other in the directories of env's PATH.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	pathList := ""
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			pathList = v
		}
	}
	for _, d := range filepath.SplitList(pathList) {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("executable %q not found in PATH %q", name, pathList)
}
