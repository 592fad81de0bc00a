package gomodule

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"
)

// fakeModule writes the zip of module example.com/charts@v1.2.3 holding
// files, and returns it with its pinned hash.
func fakeModule(t *testing.T, files map[string]string) (Module, []byte) {
	t.Helper()
	m := Module{Path: "example.com/charts", Version: "v1.2.3"}
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := modzip.CreateFromDir(&buf, module.Version{Path: m.Path, Version: m.Version}, dir); err != nil {
		t.Fatal(err)
	}
	zipPath := filepath.Join(t.TempDir(), "m.zip")
	if err := os.WriteFile(zipPath, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := dirhash.HashZip(zipPath, dirhash.Hash1)
	if err != nil {
		t.Fatal(err)
	}
	m.Sum = sum
	return m, buf.Bytes()
}

// fakeProxy serves zip as m's at the proxy's path of it.
func fakeProxy(t *testing.T, m Module, zip []byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/example.com/charts/@v/"+m.Version+".zip" {
			http.NotFound(w, r)
			return
		}
		w.Write(zip)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestReadFileFromProxy(t *testing.T) {
	m, zip := fakeModule(t, map[string]string{
		"go.mod":                    "module example.com/charts\n",
		"daemonset/firewall.yaml":   "kind: DaemonSet\n",
		"install/chart/Chart.yaml":  "name: chart\n",
		"install/chart/values.yaml": "a: 1\n",
	})
	src := Source{Go: "-", Proxy: fakeProxy(t, m, zip).URL}
	ctx := context.Background()

	data, err := src.ReadFile(ctx, m, "daemonset/firewall.yaml")
	if err != nil || string(data) != "kind: DaemonSet\n" {
		t.Fatalf("ReadFile = %q, %v", data, err)
	}
	chart, err := src.ReadFiles(ctx, m, func(name string) bool { return strings.HasPrefix(name, "install/chart/") })
	if err != nil || len(chart) != 2 || string(chart["install/chart/values.yaml"]) != "a: 1\n" {
		t.Fatalf("ReadFiles = %v, %v", chart, err)
	}

	for _, tc := range []struct {
		name   string
		m      Module
		file   string
		errHas string
	}{
		{"missing file", m, "daemonset/other.yaml", "has no file daemonset/other.yaml"},
		{"hash differs from the pin", Module{Path: m.Path, Version: m.Version, Sum: "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}, "go.mod", "want the pinned h1:AAAA"},
		{"no pin", Module{Path: m.Path, Version: m.Version}, "go.mod", "no pinned hash"},
		{"version the proxy lacks", Module{Path: m.Path, Version: "v9.9.9", Sum: m.Sum}, "go.mod", "404 Not Found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := src.ReadFile(ctx, tc.m, tc.file)
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("ReadFile error = %v, want one containing %q", err, tc.errHas)
			}
		})
	}
}

// TestReadFileWithGo reads a file of a module this repository already
// depends on through the go command (from the module cache: no download).
func TestReadFileWithGo(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	version := requiredVersion(t, "golang.org/x/mod")
	m := Module{Path: "golang.org/x/mod", Version: version, Sum: goSum(t, "golang.org/x/mod", version)}
	data, err := Source{Go: goCmd}.ReadFile(context.Background(), m, "LICENSE")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte("Redistribution and use")) {
		t.Errorf("LICENSE of %s: %q", m, data[:min(len(data), 80)])
	}
	m.Sum = "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	if _, err := (Source{Go: goCmd}).ReadFile(context.Background(), m, "LICENSE"); err == nil || !strings.Contains(err.Error(), "want the pinned") {
		t.Errorf("wrong pin: error %v, want a hash mismatch", err)
	}
}

// requiredVersion is the version of path that this repository's go.mod
// requires.
func requiredVersion(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	file, err := modfile.ParseLax("go.mod", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range file.Require {
		if req.Mod.Path == path {
			return req.Mod.Version
		}
	}
	t.Fatalf("go.mod does not require %s", path)
	return ""
}

// goSum is the zip hash go.sum of this repository records for path@version.
func goSum(t *testing.T, path, version string) string {
	t.Helper()
	data, err := os.ReadFile("../../go.sum")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == path && f[1] == version {
			return f[2]
		}
	}
	t.Fatalf("go.sum has no %s %s", path, version)
	return ""
}

func TestProxyFromGOPROXY(t *testing.T) {
	for _, tc := range []struct {
		goproxy string
		want    string
		wantErr bool
	}{
		{"", DefaultProxy, false},
		{"https://goproxy.example,direct", "https://goproxy.example", false},
		{"direct|http://mirror.example", "http://mirror.example", false},
		{"off", "", true},
		{"direct", "", true},
	} {
		t.Run(tc.goproxy, func(t *testing.T) {
			t.Setenv("GOPROXY", tc.goproxy)
			got, err := Source{}.proxy()
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("proxy() = %q, %v; want %q (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
