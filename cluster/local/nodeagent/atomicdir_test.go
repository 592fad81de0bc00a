package nodeagent

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func TestWriteAtomicDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vol")
	entries := func() string {
		t.Helper()
		list, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range list {
			name := e.Name()
			if strings.HasPrefix(name, "..") && name != dataLink {
				name = "..TIMESTAMP"
			}
			if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && name != dataLink {
				name += " -> " + target
			}
			out = append(out, name)
		}
		sort.Strings(out)
		return strings.Join(out, ", ")
	}
	read := func(p string) string {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return string(data)
	}
	v1 := []volumeFile{{path: "key", data: []byte("one"), mode: 0o644}, {path: "sub/nested", data: []byte("deep"), mode: 0o600}}
	if changed, err := writeAtomicDir(dir, v1); err != nil || !changed {
		t.Fatalf("first write: changed %v, %v", changed, err)
	}
	if got, want := entries(), "..TIMESTAMP, ..data, key -> ..data/key, sub -> ..data/sub"; got != want {
		t.Errorf("entries %s, want %s", got, want)
	}
	if read("key") != "one" || read("sub/nested") != "deep" {
		t.Errorf("key %q, sub/nested %q", read("key"), read("sub/nested"))
	}
	if st, err := os.Stat(filepath.Join(dir, "sub/nested")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("sub/nested mode: %v, %v", st, err)
	}
	first, _ := os.Readlink(filepath.Join(dir, dataLink))
	if changed, err := writeAtomicDir(dir, v1); err != nil || changed {
		t.Errorf("the same files again: changed %v, %v", changed, err)
	}
	if again, _ := os.Readlink(filepath.Join(dir, dataLink)); again != first {
		t.Errorf("the same files again moved ..data from %s to %s", first, again)
	}
	// A mode change is a change too.
	v1[0].mode = 0o640
	if changed, err := writeAtomicDir(dir, v1); err != nil || !changed {
		t.Errorf("a new mode: changed %v, %v", changed, err)
	}
	v2 := []volumeFile{{path: "key", data: []byte("two"), mode: 0o644}, {path: "added", data: []byte("new"), mode: 0o644}}
	if changed, err := writeAtomicDir(dir, v2); err != nil || !changed {
		t.Fatalf("update: changed %v, %v", changed, err)
	}
	if got, want := entries(), "..TIMESTAMP, ..data, added -> ..data/added, key -> ..data/key"; got != want {
		t.Errorf("after the update: entries %s, want %s (the old directory and sub gone)", got, want)
	}
	if read("key") != "two" || read("added") != "new" {
		t.Errorf("after the update: key %q, added %q", read("key"), read("added"))
	}
	if changed, err := writeAtomicDir(dir, nil); err != nil || !changed || entries() != "..TIMESTAMP, ..data" {
		t.Errorf("emptied: changed %v, %v, entries %s", changed, err, entries())
	}
	for _, bad := range []string{"../escape", "/abs", "..data", "..hidden/x", "."} {
		if _, err := writeAtomicDir(dir, []volumeFile{{path: bad, data: []byte("x"), mode: 0o644}}); err == nil {
			t.Errorf("item path %q was written", bad)
		}
	}
}
