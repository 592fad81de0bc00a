package toolpins

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// The embedded copies are the tools modules of the checkout, file for file,
// and every tools module is carried.
func TestPinsMatchTheToolsModules(t *testing.T) {
	modules, err := filepath.Glob("../*bin/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range modules {
		want = append(want, filepath.Base(filepath.Dir(m)))
	}
	names, err := Names()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, want) {
		t.Fatalf("embedded tools modules %v, want those of cluster/local %v (run make pins)", names, want)
	}
	for _, name := range names {
		for _, f := range files {
			onDisk, err := os.ReadFile(filepath.Join("..", name, f))
			if err != nil {
				t.Fatal(err)
			}
			embedded, err := File(name, f)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(onDisk, embedded) {
				t.Errorf("the embedded %s/%s differs from cluster/local/%s/%s: run make pins", name, f, name, f)
			}
		}
	}
}

// Dir writes a module once, under a name of its content, and reuses it.
func TestDir(t *testing.T) {
	cache := t.TempDir()
	dir, err := Dir(cache, "kubebin")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		got, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := File("kubebin", f); !bytes.Equal(got, want) {
			t.Errorf("%s differs from the embedded one", f)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "marker"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := Dir(cache, "kubebin")
	if err != nil || again != dir {
		t.Fatalf("second Dir: %q, %v; want %q", again, err, dir)
	}
	if _, err := os.Stat(filepath.Join(again, "marker")); err != nil {
		t.Errorf("the module was written again: %v", err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(cache, "toolmods", "*-writing-*")); len(leftovers) > 0 {
		t.Errorf("temporary directories left: %v", leftovers)
	}
	if _, err := Dir(cache, "nosuchbin"); err == nil {
		t.Error("Dir of a module not carried: no error")
	}
}
