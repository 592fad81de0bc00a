package main

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestHelp(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		wantStdout string // or, for a command's flags, stderr
		wantStderr string
	}{
		{[]string{"help"}, "usage: netpolcheck COMMAND [flags]", ""},
		{[]string{"kind", "-h"}, "usage: netpolcheck kind SUBCOMMAND [flags]", ""},
		{[]string{"kind", "--help"}, "  env    print the suites' environment", ""},
		{[]string{"help", "kind"}, "  up     create a kind cluster", ""},
		{[]string{"local", "-h"}, "usage: netpolcheck local SUBCOMMAND [flags]", ""},
		{[]string{"help", "local"}, "  down   take the local cluster down", ""},
		{[]string{"help", "kind", "up"}, "", "-nodes int"},
		{[]string{"kind", "help", "logs"}, "", "directory to write the nodes' logs into"},
		{[]string{"help", "local", "up"}, "", "-enforcer-profile string"},
		{[]string{"help", "expect"}, "", "-model string"},
		{[]string{"help", "probe"}, "", "-context string"},
	} {
		code, stdout, stderr := runCLI(t, tc.args...)
		if code != 0 || !strings.Contains(stdout, tc.wantStdout) || !strings.Contains(stderr, tc.wantStderr) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 0, %q and %q", tc.args, code, stdout, stderr, tc.wantStdout, tc.wantStderr)
		}
	}
	// the local cluster's node agent is started by local up, not by hand
	if _, stdout, _ := runCLI(t, "local", "-h"); strings.Contains(stdout, "node-agent") {
		t.Errorf("local -h lists node-agent:\n%s", stdout)
	}
	if code, _, stderr := runCLI(t, "help", "nothing"); code != 2 || !strings.Contains(stderr, `unknown command "nothing"`) {
		t.Errorf("help nothing: exit %d, stderr %q", code, stderr)
	}
}

func TestNodesCountEveryNode(t *testing.T) {
	for _, tc := range []struct {
		args        []string
		wantWorkers int
		wantErr     string
	}{
		{nil, 2, ""},
		{[]string{"--nodes", "3"}, 2, ""},
		{[]string{"--nodes", "1"}, 0, ""},
		{[]string{"--nodes", "0"}, 0, "--nodes 0: want 1 or more"},
	} {
		opts, err := kindUpOptions(tc.args, io.Discard)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("kind up %v: err %v, want %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil || opts.Workers != tc.wantWorkers {
			t.Errorf("kind up %v: %d workers, err %v; want %d workers", tc.args, opts.Workers, err, tc.wantWorkers)
		}
	}
	opts, err := localUpOptions([]string{"--nodes", "3"}, io.Discard)
	if err != nil || opts.Nodes != 3 {
		t.Errorf("local up --nodes 3: %d nodes, err %v", opts.Nodes, err)
	}
	if _, err := localUpOptions([]string{"--nodes", "0"}, io.Discard); err == nil || !strings.Contains(err.Error(), "--nodes 0: want 1 or more") {
		t.Errorf("local up --nodes 0: err %v", err)
	}
}

func TestLocalUpCNIAndEnforcerProfile(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		wantCNI  string
		wantArgs []string
		wantErr  string
	}{
		{nil, "reference", nil, ""},
		{[]string{"--enforcer-profile", "correct"}, "reference", nil, ""},
		{[]string{"--cni", "none"}, "none", nil, ""},
		{[]string{"--cni", "kube-router"}, "kube-router", nil, ""},
		{[]string{"--cni", "flannel"}, "flannel", nil, ""},
		{[]string{"--cni", "flannel-kube-router"}, "flannel-kube-router", nil, ""},
		{[]string{"--enforcer-profile", "delay", "--enforcer-delay", "2s"}, "reference", []string{"--profile", "delay", "--delay", "2s"}, ""},
		{[]string{"--enforcer-profile", "delay"}, "reference", []string{"--profile", "delay"}, ""},
		{[]string{"--cni", "weave"}, "", nil, `--cni "weave": want one of flannel, flannel-kube-router, kube-router, none, reference`},
		{[]string{"--enforcer-profile", "none"}, "", nil, "--enforcer-profile none: the enforcer's none profile is the CNI choice --cni none"},
		{[]string{"--cni", "kube-router", "--enforcer-profile", "delay"}, "", nil, "--enforcer-profile delay: only with --cni reference, not kube-router"},
		{[]string{"--cni", "flannel", "--enforcer-profile", "delay"}, "", nil, "--enforcer-profile delay: only with --cni reference, not flannel"},
		{[]string{"--enforcer-profile", "nonee"}, "", nil, `--enforcer-profile: unknown profile "nonee": want correct, none or delay`},
		{[]string{"--enforcer-delay", "2s"}, "", nil, "--enforcer-delay 2s: only a positive delay, with --enforcer-profile=delay"},
	} {
		opts, err := localUpOptions(tc.args, io.Discard)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("local up %v: err %v, want %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil || opts.CNI != tc.wantCNI || !slices.Equal(opts.EnforcerArgs, tc.wantArgs) {
			t.Errorf("local up %v: CNI %q, enforcer args %q, err %v; want %q, %q", tc.args, opts.CNI, opts.EnforcerArgs, err, tc.wantCNI, tc.wantArgs)
		}
	}
}

func TestProbeKubeconfigLoadingRules(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "config")
	data := "apiVersion: v1\nkind: Config\ncurrent-context: a\nclusters:\n- name: a\n  cluster: {server: 'https://127.0.0.1:1'}\n" +
		"contexts:\n- name: a\n  context: {cluster: a, user: a}\nusers:\n- name: a\n  user: {token: t}\n"
	if err := os.WriteFile(config, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", filepath.Join(dir, "missing")+":"+config)
	for _, tc := range []struct {
		args     []string
		wantCode int
		wantErr  string
	}{
		{[]string{"probe", "--namespaces", "x", "--context", "nope"}, 1, `context "nope" does not exist`},
		{[]string{"probe", "--namespaces", "x", "--kubeconfig", config, "--context", "nope"}, 1, `context "nope" does not exist`},
		{[]string{"probe", "--namespaces", "x", "--local", "npc", "--context", "a"}, 2, "give no --kubeconfig or --context with it"},
	} {
		code, _, stderr := runCLI(t, tc.args...)
		if code != tc.wantCode || !strings.Contains(stderr, tc.wantErr) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr, tc.wantCode, tc.wantErr)
		}
	}
}

// After "--" nothing is a flag: every command takes what follows as
// arguments, and those that take none reject them.
func TestDoubleDashEndsFlags(t *testing.T) {
	reference, _, _ := writeRuns(t)
	out := filepath.Join(t.TempDir(), "out.html")
	for _, tc := range []struct {
		args     []string
		wantCode int
		wantErr  string
	}{
		{[]string{"compare", "--", reference, "--html", out}, 1, "--html: no such file"},
		{[]string{"compare", reference, "--", "--html", out}, 1, "--html: no such file"},
		{[]string{"expect", "--model", exampleModel, "--", "--policies", examplePolicies}, 2, "unexpected arguments: --policies"},
		{[]string{"probe", "--namespaces", "x", "--", "--local", "npc"}, 2, "unexpected arguments: --local npc"},
		{[]string{"report", "--", "--junit", "x.xml"}, 2, "unexpected arguments: --junit x.xml"},
		{[]string{"kind", "up", "--", "--cni", "calico"}, 2, "unexpected arguments: --cni calico"},
		{[]string{"local", "up", "--", "--nodes", "3"}, 2, "unexpected arguments: --nodes 3"},
	} {
		code, _, stderr := runCLI(t, tc.args...)
		if code != tc.wantCode || !strings.Contains(stderr, tc.wantErr) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr, tc.wantCode, tc.wantErr)
		}
	}
	// "--" as a flag's value is a value
	fs := newFlagSet("compare", io.Discard)
	fs.String("html", "", "")
	files, err := parseInterspersed(fs, []string{"--html", "--", "a.json"})
	if err != nil || !slices.Equal(files, []string{"a.json"}) {
		t.Errorf("--html -- a.json: %q, %v; want [a.json]", files, err)
	}
}
