package cni

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHTTPFetcher(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/calico.yaml" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("kind: ConfigMap\n"))
	}))
	defer srv.Close()
	fetch := HTTPFetcher(srv.Client())
	cases := []struct {
		path, want, err string
	}{
		{path: "/calico.yaml", want: "kind: ConfigMap\n"},
		{path: "/missing.yaml", err: "404 Not Found"},
	}
	for _, tc := range cases {
		got, err := fetch(context.Background(), srv.URL+tc.path)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), tc.path) {
				t.Errorf("%s: error %v, want one naming the URL and %q", tc.path, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.path, err)
		case string(got) != tc.want:
			t.Errorf("%s: got %q, want %q", tc.path, got, tc.want)
		}
	}
}

func TestHelmBinary(t *testing.T) {
	dir := t.TempDir()
	script := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cases := []struct {
		name, path, want, err string
	}{
		{name: "output", path: script("helm-ok", `echo "args: $*"`), want: "args: template cilium cilium\n"},
		{name: "failure", path: script("helm-fail", `echo "Error: chart not found" >&2; exit 1`), err: "Error: chart not found"},
		{name: "silent", path: script("helm-silent", `exit 0`), err: "no output"},
		{name: "missing", path: filepath.Join(dir, "no-helm"), err: "helm not found"},
	}
	for _, tc := range cases {
		out, err := HelmBinary(tc.path)(context.Background(), "template", "cilium", "cilium")
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case string(out) != tc.want:
			t.Errorf("%s: output %q, want %q", tc.name, out, tc.want)
		}
	}
}
