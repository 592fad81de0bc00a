// Package gomodule reads files of a Go module at a pinned version from the
// module's zip, the archive the Go module proxy serves and `go mod download`
// keeps in the module cache. Third-party manifests and charts are read this
// way (kube-router's daemonsets, Flannel's kube-flannel.yml, Cilium's chart),
// so that what is installed is exactly the pinned release, and the machine
// needs nothing but the module proxy that builds already use.
//
// The zip comes from the Go toolchain when `go` is on PATH (`go mod
// download -json`, which uses GOPROXY, GOFLAGS and the module cache as every
// build does, and checks the checksum database), or else straight from the
// first HTTP(S) entry of GOPROXY (default https://proxy.golang.org). Either
// way its hash must equal the Sum the caller pinned, as go.sum would hold it.
package gomodule

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
)

// maxZipBytes bounds a module zip (the proxy's own limit is 500 MB).
const maxZipBytes = 500 << 20

// maxFileBytes bounds one file read from a zip.
const maxFileBytes = 64 << 20

// DefaultProxy is the module proxy used when GOPROXY is unset.
const DefaultProxy = "https://proxy.golang.org"

// Module is a module at a pinned version and the h1: hash of its zip.
type Module struct {
	Path    string
	Version string
	// Sum is the zip's hash as go.sum records it ("h1:...").
	Sum string
}

func (m Module) String() string { return m.Path + "@" + m.Version }

// Source finds module zips. The zero value uses the environment: `go` from
// PATH, GOPROXY, and http.DefaultClient.
type Source struct {
	// Go is the go command; empty looks "go" up on PATH, and "-" never
	// uses one.
	Go string
	// Proxy is the module proxy's base URL for downloads without the go
	// command; empty takes GOPROXY's first HTTP(S) entry, else
	// DefaultProxy.
	Proxy string
	// Client makes those downloads; nil is http.DefaultClient.
	Client *http.Client
}

// ReadFile returns the file name (a slash path from the module's root) of
// module m, from the zip the environment's Source finds.
func ReadFile(ctx context.Context, m Module, name string) ([]byte, error) {
	return Source{}.ReadFile(ctx, m, name)
}

// ReadFile returns the file name (a slash path from the module's root) of
// module m.
func (s Source) ReadFile(ctx context.Context, m Module, name string) ([]byte, error) {
	files, err := s.ReadFiles(ctx, m, func(n string) bool { return n == name })
	if err != nil {
		return nil, err
	}
	data, ok := files[name]
	if !ok {
		return nil, fmt.Errorf("module %s has no file %s", m, name)
	}
	return data, nil
}

// ReadFiles returns every file of module m whose slash path from the
// module's root keep accepts, by that path (a chart is a directory of
// files).
func (s Source) ReadFiles(ctx context.Context, m Module, keep func(name string) bool) (map[string][]byte, error) {
	if m.Sum == "" {
		return nil, fmt.Errorf("module %s: no pinned hash (Sum)", m)
	}
	zr, err := s.open(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", m, err)
	}
	prefix := m.Path + "@" + m.Version + "/"
	files := map[string][]byte{}
	for _, f := range zr.File {
		name, ok := strings.CutPrefix(f.Name, prefix)
		if !ok || strings.HasSuffix(f.Name, "/") || !keep(name) {
			continue
		}
		data, err := readZipFile(f)
		if err != nil {
			return nil, fmt.Errorf("module %s: %s: %w", m, name, err)
		}
		files[name] = data
	}
	return files, nil
}

func readZipFile(f *zip.File) ([]byte, error) {
	if f.UncompressedSize64 > maxFileBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxFileBytes)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, maxFileBytes))
}

// open finds m's zip, checks its hash and opens it.
func (s Source) open(ctx context.Context, m Module) (*zip.Reader, error) {
	goCmd := s.Go
	if goCmd == "" {
		if p, err := exec.LookPath("go"); err == nil {
			goCmd = p
		} else {
			goCmd = "-"
		}
	}
	var path string
	if goCmd != "-" {
		p, err := downloadWithGo(ctx, goCmd, m)
		if err != nil {
			return nil, err
		}
		path = p
	} else {
		p, cleanup, err := s.downloadFromProxy(ctx, m)
		if err != nil {
			return nil, err
		}
		defer cleanup()
		path = p
	}
	sum, err := dirhash.HashZip(path, dirhash.Hash1)
	if err != nil {
		return nil, fmt.Errorf("hashing %s: %w", path, err)
	}
	if sum != m.Sum {
		return nil, fmt.Errorf("zip %s has hash %s, want the pinned %s", path, sum, m.Sum)
	}
	// Read it whole: the file may be a temporary one, removed on return.
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("reading zip %s: %w", path, err)
	}
	return zr, nil
}

// downloadWithGo has the go command download m and returns its zip in the
// module cache.
func downloadWithGo(ctx context.Context, goCmd string, m Module) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, goCmd, "mod", "download", "-json", m.String())
	// Outside any module, so that no go.mod of the working directory
	// takes part.
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GO111MODULE=on")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var out struct{ Zip, Sum, Error string }
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		if runErr != nil {
			return "", fmt.Errorf("go mod download %s: %w: %s", m, runErr, strings.TrimSpace(stderr.String()))
		}
		return "", fmt.Errorf("go mod download %s: reading its output: %w", m, err)
	}
	if out.Error != "" {
		return "", fmt.Errorf("go mod download %s: %s", m, out.Error)
	}
	if runErr != nil {
		return "", fmt.Errorf("go mod download %s: %w: %s", m, runErr, strings.TrimSpace(stderr.String()))
	}
	if out.Zip == "" {
		return "", fmt.Errorf("go mod download %s: no zip in its output", m)
	}
	return out.Zip, nil
}

// downloadFromProxy fetches m's zip from the module proxy into a temporary
// file; cleanup removes it.
func (s Source) downloadFromProxy(ctx context.Context, m Module) (path string, cleanup func(), err error) {
	base, err := s.proxy()
	if err != nil {
		return "", nil, err
	}
	escPath, err := module.EscapePath(m.Path)
	if err != nil {
		return "", nil, err
	}
	escVersion, err := module.EscapeVersion(m.Version)
	if err != nil {
		return "", nil, err
	}
	url := strings.TrimSuffix(base, "/") + "/" + escPath + "/@v/" + escVersion + ".zip"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", nil, err
	}
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", nil, fmt.Errorf("fetching %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", nil, fmt.Errorf("fetching %s: %s", url, resp.Status)
	}
	f, err := os.CreateTemp("", "netpolcheck-module-*.zip")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.Remove(f.Name()) }
	n, err := io.Copy(f, io.LimitReader(resp.Body, maxZipBytes+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > maxZipBytes {
		err = fmt.Errorf("larger than %d bytes", maxZipBytes)
	}
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("fetching %s: %w", url, err)
	}
	return f.Name(), cleanup, nil
}

// proxy is the base URL downloads use.
func (s Source) proxy() (string, error) {
	if s.Proxy != "" {
		return s.Proxy, nil
	}
	env, ok := os.LookupEnv("GOPROXY")
	if !ok || env == "" {
		return DefaultProxy, nil
	}
	for _, entry := range strings.FieldsFunc(env, func(r rune) bool { return r == ',' || r == '|' }) {
		if strings.HasPrefix(entry, "https://") || strings.HasPrefix(entry, "http://") {
			return entry, nil
		}
	}
	return "", errors.New("GOPROXY=" + env + " names no HTTP(S) module proxy, and the go command is not on PATH")
}
