package reports

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"
)

// ReadRun and Load read a gzipped results.json as the plain one.
func TestReadRunGzipped(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "results.json")
	run := &Run{Name: "kube-router", CNI: "kube-router", Cases: []Case{{ID: "recipes/a", State: Passed}}}
	if err := run.Write(plain); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(plain)
	if err != nil {
		t.Fatal(err)
	}
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	gz := filepath.Join(dir, "results.json.gz")
	if err := os.WriteFile(gz, zipped.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, read := range []func(string) (*Run, error){ReadRun, func(p string) (*Run, error) { return Load(p, "") }} {
		got, err := read(gz)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "kube-router" || len(got.Cases) != 1 || got.Cases[0].ID != "recipes/a" {
			t.Errorf("read back %+v", got)
		}
	}
}
