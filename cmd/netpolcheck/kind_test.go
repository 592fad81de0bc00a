package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKindCommand(t *testing.T) {
	// A docker CLI whose engine is down: every subcommand stops at the
	// engine check, before kind runs.
	bin := t.TempDir()
	docker := "#!/bin/sh\necho 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(docker), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":/usr/bin:/bin")
	t.Setenv("KIND_EXPERIMENTAL_PROVIDER", "")
	state := filepath.Join(t.TempDir(), "state")
	noEngine := "kind needs a Docker (or podman) engine: docker not reachable: Cannot connect to the Docker daemon"
	cases := []struct {
		args     []string
		wantCode int
		wantErr  string
	}{
		{[]string{"kind"}, 2, "kind needs a subcommand: up, down, logs or env"},
		{[]string{"kind", "env", "--state-dir", state}, 1, "no kind cluster netpolcheck brought up by netpolcheck kind up in " + state},
		{[]string{"kind", "env", "--state-dir", state, "extra"}, 2, "unexpected arguments: extra"},
		{[]string{"kind", "sideways"}, 2, `unknown kind subcommand "sideways"`},
		{[]string{"kind", "up", "--cni", "weave"}, 2, `--cni "weave": want one of calico, canal, cilium, flannel, kube-router, none, reference`},
		{[]string{"kind", "up", "extra"}, 2, "unexpected arguments: extra"},
		{[]string{"kind", "logs", "--state-dir", state}, 2, "missing required flags: --dir"},
		{[]string{"kind", "up", "--state-dir", state, "--cni", "calico"}, 1, noEngine},
		{[]string{"kind", "up", "--state-dir", state, "--image", "netpolcheck:latest"}, 1, "give it a tag other than latest"},
		{[]string{"kind", "down", "--state-dir", state}, 1, noEngine},
		{[]string{"kind", "logs", "--state-dir", state, "--dir", t.TempDir()}, 1, noEngine},
	}
	for _, tc := range cases {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, &stdout, &stderr)
		if code != tc.wantCode || !strings.Contains(stderr.String(), tc.wantErr) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr.String(), tc.wantCode, tc.wantErr)
		}
	}
}
