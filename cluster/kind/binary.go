package kind

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// KindBinaryPath is where FindKind builds kind under cacheDir.
func KindBinaryPath(cacheDir string) string {
	return filepath.Join(cacheDir, "kind", KindVersion, "kind")
}

// FindKind returns the kind binary to use: explicit when given; else
// `kind` on PATH when it is KindVersion; else KindBinaryPath(cacheDir),
// built there with `go install sigs.k8s.io/kind@KindVersion` when missing.
func FindKind(ctx context.Context, explicit, cacheDir string, progress io.Writer) (string, error) {
	if explicit != "" {
		path, err := exec.LookPath(explicit)
		if err != nil {
			return "", fmt.Errorf("kind binary %s: %w", explicit, err)
		}
		return filepath.Abs(path)
	}
	if path, err := exec.LookPath("kind"); err == nil {
		version, verr := kindVersion(ctx, path)
		if verr == nil && version == KindVersion {
			return filepath.Abs(path)
		}
		fmt.Fprintf(progress, "kind: %s is %s, not %s: using the pinned release\n", path, describeVersion(version, verr), KindVersion)
	}
	cached := KindBinaryPath(cacheDir)
	if version, err := kindVersion(ctx, cached); err == nil && version == KindVersion {
		return cached, nil
	}
	if err := buildKind(ctx, cached, progress); err != nil {
		return "", err
	}
	return cached, nil
}

// kindVersion returns the version a kind binary reports ("kind v0.33.0
// go1.26 linux/amd64" gives v0.33.0).
func kindVersion(ctx context.Context, path string) (string, error) {
	out, err := exec.CommandContext(ctx, path, "version").Output()
	if err != nil {
		return "", err
	}
	fields := strings.Fields(string(out))
	if len(fields) < 2 || fields[0] != "kind" {
		return "", fmt.Errorf("unexpected `kind version` output %q", out)
	}
	return fields[1], nil
}

func describeVersion(version string, err error) string {
	if err != nil {
		return "of unknown version (" + err.Error() + ")"
	}
	return version
}

// buildKind builds kind of KindVersion into path with the Go toolchain,
// through a temporary directory so a failed build leaves nothing behind.
func buildKind(ctx context.Context, path string, progress io.Writer) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("kind %s is not installed and go is not on PATH to build it: install kind %s (https://kind.sigs.k8s.io/docs/user/quick-start/#installation) or Go", KindVersion, KindVersion)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("building kind: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		return fmt.Errorf("building kind: %w", err)
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintf(progress, "kind: building %s@%s into %s\n", KindModule, KindVersion, dir)
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, goBin, "install", KindModule+"@"+KindVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "CGO_ENABLED=0", "GOFLAGS=")
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go install %s@%s: %w: %s", KindModule, KindVersion, err, strings.TrimSpace(stderr.String()))
	}
	if err := os.Rename(filepath.Join(tmp, "kind"), path); err != nil {
		return fmt.Errorf("building kind: %w", err)
	}
	return nil
}
