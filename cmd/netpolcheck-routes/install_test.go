package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestInstallFileReplacesAtomically(t *testing.T) {
	srcDir, dstDir := t.TempDir(), filepath.Join(t.TempDir(), "opt", "cni", "bin")
	src := filepath.Join(srcDir, "netpolcheck-cni")
	if err := os.WriteFile(src, []byte("new binary"), 0o700); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second run replaces the first copy
		if err := installFile(src, dstDir); err != nil {
			t.Fatal(err)
		}
	}
	installed := filepath.Join(dstDir, "netpolcheck-cni")
	content, err := os.ReadFile(installed)
	if err != nil || string(content) != "new binary" {
		t.Fatalf("installed content %q, %v", content, err)
	}
	info, err := os.Stat(installed)
	if err != nil || info.Mode().Perm() != 0o755 {
		t.Errorf("installed mode %v, %v; want 0755", info.Mode(), err)
	}
	entries, _ := os.ReadDir(dstDir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the plugin (no temporary files)", len(entries))
	}
	if err := installFile(filepath.Join(srcDir, "missing"), dstDir); err == nil {
		t.Error("installing a missing file succeeded")
	}
}
