package controlplane

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const testVersion = "v1.37.2"

// writeFakeBinaries writes shell scripts named like the components that
// print "Kubernetes VERSION" for --version.
func writeFakeBinaries(t *testing.T, dir, version string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range components() {
		script := "#!/bin/sh\necho Kubernetes " + version + "\n"
		if err := os.WriteFile(filepath.Join(dir, c.name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestEnsureBinariesReusesCompleteCache(t *testing.T) {
	cache := t.TempDir()
	versionDir := filepath.Join(cache, "kubernetes-"+testVersion)
	writeFakeBinaries(t, filepath.Join(versionDir, "bin"), testVersion)
	if err := os.WriteFile(filepath.Join(versionDir, buildStamp), []byte(testVersion+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvPrebuiltDir, "")

	var progress bytes.Buffer
	// No SourceDir: anything but a cache hit fails.
	bins, err := EnsureBinaries(context.Background(), BuildOptions{CacheDir: cache, Version: testVersion, Progress: &progress})
	if err != nil {
		t.Fatalf("EnsureBinaries: %v", err)
	}
	if want := filepath.Join(versionDir, "bin", "kube-apiserver"); bins.APIServer != want {
		t.Errorf("APIServer = %q, want %q", bins.APIServer, want)
	}
	if bins.Version != testVersion {
		t.Errorf("Version = %q, want %q", bins.Version, testVersion)
	}
	if progress.Len() != 0 {
		t.Errorf("a cache hit printed %q", progress.String())
	}
}

func TestEnsureBinariesIgnoresIncompleteCache(t *testing.T) {
	cache := t.TempDir()
	// Binaries without the stamp: an interrupted build.
	writeFakeBinaries(t, filepath.Join(cache, "kubernetes-"+testVersion, "bin"), testVersion)
	t.Setenv(EnvPrebuiltDir, "")

	_, err := EnsureBinaries(context.Background(), BuildOptions{CacheDir: cache, Version: testVersion})
	if err == nil || !strings.Contains(err.Error(), "no source directory") {
		t.Fatalf("EnsureBinaries with an incomplete cache and no source: err = %v, want a request for the source", err)
	}
}

func TestEnsureBinariesRefusesMismatchedSource(t *testing.T) {
	source := t.TempDir()
	goMod := "module example.com/tools\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes v1.36.0\n"
	if err := os.WriteFile(filepath.Join(source, "go.mod"), []byte(goMod), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvPrebuiltDir, "")

	_, err := EnsureBinaries(context.Background(), BuildOptions{SourceDir: source, CacheDir: t.TempDir(), Version: testVersion})
	if err == nil || !strings.Contains(err.Error(), "v1.36.0") {
		t.Fatalf("EnsureBinaries with a source pinning another release: err = %v, want a version mismatch", err)
	}
}

func TestEnsureBinariesPrebuilt(t *testing.T) {
	dir := t.TempDir()
	writeFakeBinaries(t, dir, testVersion)
	t.Setenv(EnvPrebuiltDir, dir)

	bins, err := EnsureBinaries(context.Background(), BuildOptions{Version: testVersion})
	if err != nil {
		t.Fatalf("EnsureBinaries with %s: %v", EnvPrebuiltDir, err)
	}
	if want := filepath.Join(dir, "kube-scheduler"); bins.Scheduler != want {
		t.Errorf("Scheduler = %q, want %q", bins.Scheduler, want)
	}

	wrong := t.TempDir()
	writeFakeBinaries(t, wrong, "v1.30.0")
	_, err = EnsureBinaries(context.Background(), BuildOptions{PrebuiltDir: wrong, Version: testVersion})
	if err == nil || !strings.Contains(err.Error(), "v1.30.0") {
		t.Fatalf("EnsureBinaries with prebuilt binaries of another release: err = %v, want a version mismatch", err)
	}
}

func TestLockFileWaitsForHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	unlock, err := lockFile(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}

	busy := false
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := lockFile(ctx, path, func() { busy = true }); err == nil {
		t.Fatal("a held lock was taken twice")
	}
	if !busy {
		t.Error("onBusy not called for a held lock")
	}

	unlock()
	unlockAgain, err := lockFile(context.Background(), path, nil)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	unlockAgain()
}
