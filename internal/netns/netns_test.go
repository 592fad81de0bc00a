package netns

import (
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestPath(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"npc-node1", "/run/netns/npc-node1"},
		{"a", "/run/netns/a"},
	} {
		if got := Path(tc.name); got != tc.want {
			t.Errorf("Path(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestMissingNamespace checks that every function naming a namespace that
// does not exist fails with its path and runs nothing.
func TestMissingNamespace(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	ran := false
	for name, call := range map[string]func() error{
		"Do":     func() error { return Do(missing, func() error { ran = true; return nil }) },
		"Start":  func() error { return Start(missing, exec.Command("true")) },
		"Sysctl": func() error { return Sysctl(missing, "net.ipv4.ip_forward", "1") },
		"Handle": func() error { _, err := Handle(missing); return err },
		"Pids":   func() error { _, err := Pids(missing); return err },
		"NewThread": func() error {
			_, err := NewThread(missing)
			return err
		},
	} {
		err := call()
		if err == nil || !strings.Contains(err.Error(), missing) {
			t.Errorf("%s: error %v, want one naming %s", name, err, missing)
		}
	}
	if ran {
		t.Error("Do ran its function for a missing namespace")
	}
	if err := Delete(missing); err != nil {
		t.Errorf("Delete of a missing namespace: %v", err)
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
}

// create makes the namespace npc-t<pid>-netns-<suffix> and deletes it when
// the test ends.
func create(t *testing.T, suffix string) string {
	t.Helper()
	path := Path(fmt.Sprintf("npc-t%d-netns-%s", os.Getpid(), suffix))
	if err := Create(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Delete(path); err != nil {
			t.Error(err)
		}
	})
	return path
}

// inode returns the namespace identity of path.
func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestCreateDelete(t *testing.T) {
	requireRoot(t)
	path := create(t, "create")
	if inode(t, path) == inode(t, Current) {
		t.Fatal("the new namespace is the current one")
	}
	if err := Create(path); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("creating %s again: %v, want already exists", path, err)
	}
	h, err := Handle(path)
	if err != nil {
		t.Fatal(err)
	}
	links, err := h.LinkList()
	h.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 1 || links[0].Attrs().Name != "lo" || links[0].Attrs().Flags&unix.IFF_UP == 0 {
		t.Errorf("links of a new namespace: %v, want only lo, up", links)
	}
	if err := Delete(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after Delete: %v, want it gone", path, err)
	}
	if err := Delete(path); err != nil {
		t.Errorf("deleting twice: %v", err)
	}
}

// TestDo checks that fn runs inside the namespace, that its error comes
// back, and that the thread returns to where it was.
func TestDo(t *testing.T) {
	requireRoot(t)
	path := create(t, "do")
	want := inode(t, path)
	for _, fnErr := range []error{nil, errors.New("fn failed")} {
		before := inode(t, Current)
		var inside uint64
		err := Do(path, func() error {
			inside = inode(t, Current)
			return fnErr
		})
		if !errors.Is(err, fnErr) || (fnErr == nil && err != nil) {
			t.Errorf("Do returned %v, want %v", err, fnErr)
		}
		if inside != want {
			t.Errorf("fn ran in namespace %d, want %d", inside, want)
		}
		if after := inode(t, Current); after != before {
			t.Errorf("after Do the goroutine is in namespace %d, want %d", after, before)
		}
	}
}

func TestStartAndPids(t *testing.T) {
	requireRoot(t)
	path := create(t, "start")
	cmd := exec.Command("sleep", "30")
	if err := Start(path, cmd); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if got := inode(t, fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)); got != inode(t, path) {
		t.Errorf("the child's namespace is %d, want %d", got, inode(t, path))
	}
	pids, err := Pids(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pids, []int{cmd.Process.Pid}) {
		t.Errorf("Pids = %v, want [%d]", pids, cmd.Process.Pid)
	}
	if err := Start(path, exec.Command("/nonexistent/binary")); err == nil || !strings.Contains(err.Error(), "starting /nonexistent/binary in "+path) {
		t.Errorf("starting a missing binary: %v", err)
	}
}

func TestSysctl(t *testing.T) {
	requireRoot(t)
	path := create(t, "sysctl")
	const file = "/proc/sys/net/ipv4/ip_forward"
	host, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, value := range []string{"1", "0"} {
		if err := Sysctl(path, "net.ipv4.ip_forward", value); err != nil {
			t.Fatal(err)
		}
		var got []byte
		if err := Do(path, func() (err error) { got, err = os.ReadFile(file); return err }); err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(string(got)) != value {
			t.Errorf("ip_forward inside = %q, want %s", got, value)
		}
	}
	if now, _ := os.ReadFile(file); string(now) != string(host) {
		t.Errorf("the host's ip_forward changed from %q to %q", host, now)
	}
	if err := Sysctl(path, "net.no.such.key", "1"); err == nil {
		t.Error("setting a missing sysctl succeeded")
	}
}

func TestHandleWorksInside(t *testing.T) {
	requireRoot(t)
	path := create(t, "handle")
	h, err := Handle(path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "npctest0"}, PeerName: "npctest1"}
	if err := h.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	if err := Do(path, func() error { _, err := netlink.LinkByName("npctest0"); return err }); err != nil {
		t.Errorf("the link added through the handle is not in the namespace: %v", err)
	}
	if _, err := netlink.LinkByName("npctest0"); err == nil {
		t.Error("the link added through the handle is in the host's namespace")
	}
}

func TestBind(t *testing.T) {
	requireRoot(t)
	path := filepath.Join(t.TempDir(), "self")
	if err := Bind(path); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := Delete(path); err != nil {
			t.Error(err)
		}
	}()
	if inode(t, path) != inode(t, "/proc/self/ns/net") {
		t.Error("Bind did not mount the process's namespace")
	}
	if err := Bind(path); err == nil {
		t.Error("binding over an existing file succeeded")
	}
}

func TestThread(t *testing.T) {
	requireRoot(t)
	path := create(t, "thread")
	th, err := NewThread(path)
	if err != nil {
		t.Fatal(err)
	}
	defer th.Stop()
	for range 3 {
		var inside unix.Stat_t
		var err error
		th.Run(func() { err = unix.Stat(Current, &inside) })
		if err != nil {
			t.Fatal(err)
		}
		if inside.Ino != inode(t, path) {
			t.Fatalf("Run ran in namespace %d, want %d", inside.Ino, inode(t, path))
		}
	}
	// Current pins a thread to the caller's namespace, even when the
	// caller's thread is in another one.
	var pinned *Thread
	if err := Do(path, func() (err error) { pinned, err = NewThread(Current); return err }); err != nil {
		t.Fatal(err)
	}
	defer pinned.Stop()
	var inside unix.Stat_t
	pinned.Run(func() { err = unix.Stat(Current, &inside) })
	if err != nil {
		t.Fatal(err)
	}
	if inside.Ino != inode(t, path) {
		t.Errorf("a thread pinned from inside runs in %d, want %d", inside.Ino, inode(t, path))
	}
}

// TestImportsNothingOfTheModule keeps the package at the bottom of the
// import graph, where every package of the module may use it.
func TestImportsNothingOfTheModule(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if path, _ := strconv.Unquote(imp.Path.Value); strings.HasPrefix(path, "github.com/netpolcheck/netpolcheck") {
				t.Errorf("%s imports %s", file, path)
			}
		}
	}
}
