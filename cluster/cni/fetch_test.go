package cni

import (
	"context"
	"net/http"
	"net/http/httptest"
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
