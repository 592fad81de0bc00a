package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/netpolcheck/netpolcheck/cluster/kubeconfig"
	"github.com/netpolcheck/netpolcheck/suites/compiled"
	"github.com/netpolcheck/netpolcheck/suites/framework"
)

// A terminal session driven by tmux: netpolcheck run --kubeconfig against a
// local cluster shows its progress line, and a Ctrl-C typed into the
// terminal leaves no namespace, pod or policy of the run behind and still
// writes the reports of what ran.
func TestTerminalSessionInterruptsRun(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the local cluster is made of network namespaces")
	}
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("needs tmux")
	}
	netpolcheck := buildWithSuites(t, "conformance")
	suites := compiled.DirNextTo(filepath.Dir(netpolcheck))
	name, kc := localUp(t, netpolcheck, "tm")

	session := name
	reports := t.TempDir()
	script := fmt.Sprintf("cd %s && %s run --kubeconfig %s --suites conformance --suites-dir %s --out %s; echo EXIT=$?; sleep 600",
		t.TempDir(), netpolcheck, kc, suites, reports)
	if out, err := exec.Command(tmux, "new-session", "-d", "-s", session, "-x", "220", "-y", "50", script).CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command(tmux, "kill-session", "-t", session).Run() })
	pane := func() string {
		out, err := exec.Command(tmux, "capture-pane", "-p", "-t", session).Output()
		if err != nil {
			t.Fatalf("tmux capture-pane: %v", err)
		}
		return string(out)
	}
	progressLine := regexp.MustCompile(`(?m)^(\d+)/(\d+) cases, \d+ passed, \d+ failed.*, ETA \S+`)
	waitFor := func(what string, timeout time.Duration, ok func(string) bool) string {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for {
			p := pane()
			if ok(p) {
				return p
			}
			if time.Now().After(deadline) {
				t.Fatalf("waited %s for %s; the terminal shows:\n%s", timeout, what, p)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	shown := waitFor("the progress line to count 3 cases", 5*time.Minute, func(p string) bool {
		m := progressLine.FindStringSubmatch(p)
		done, _ := strconv.Atoi(submatch(m, 1))
		return done >= 3
	})
	if strings.Contains(shown, "passed conformance:") {
		t.Errorf("a terminal gets the progress line, not a line per case:\n%s", shown)
	}
	if out, err := exec.Command(tmux, "send-keys", "-t", session, "C-c").CombinedOutput(); err != nil {
		t.Fatalf("tmux send-keys C-c: %v\n%s", err, out)
	}
	final := waitFor("the run to end", 4*time.Minute, func(p string) bool { return strings.Contains(p, "EXIT=") })
	for _, want := range []string{"interrupted: cleaning up and writing the reports of what ran", "cases: ", "EXIT=1"} {
		if !strings.Contains(final, want) {
			t.Errorf("the terminal lacks %q:\n%s", want, final)
		}
	}
	for _, f := range []string{"junit.xml", "results.json", "summary.md", "report.html"} {
		if _, err := os.Stat(filepath.Join(reports, f)); err != nil {
			t.Errorf("after the interrupt: %v", err)
		}
	}

	cfg, err := kubeconfig.Load(kc, "")
	if err != nil {
		t.Fatal(err)
	}
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	namespaces, err := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range namespaces.Items {
		if _, ok := ns.Annotations[framework.RunAnnotation]; ok || !strings.HasPrefix(ns.Name, "kube-") && ns.Name != "default" {
			t.Errorf("namespace %s left behind", ns.Name)
		}
	}
	pods, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Namespace != "kube-system" || strings.HasPrefix(p.Name, "dns-") {
			t.Errorf("pod %s/%s left behind", p.Namespace, p.Name)
		}
	}
	policies, err := client.NetworkingV1().NetworkPolicies("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range policies.Items {
		t.Errorf("policy %s/%s left behind", p.Namespace, p.Name)
	}
}

// submatch is the i-th submatch, or "" without a match.
func submatch(m []string, i int) string {
	if len(m) <= i {
		return ""
	}
	return m[i]
}
