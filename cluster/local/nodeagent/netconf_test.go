package nodeagent

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func writeConf(t *testing.T, dir, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The first configuration in lexical order attaches pods, as containerd
// picks it: a conflist or a single plugin's configuration.
func TestFirstNetConfInLexicalOrder(t *testing.T) {
	dir := t.TempDir()
	writeConf(t, dir, "10-kuberouter.conflist", `{"cniVersion":"1.0.0","name":"kuberouter","plugins":[{"type":"bridge"}]}`)
	writeConf(t, dir, "10-flannel.conflist", `{"cniVersion":"1.0.0","name":"cbr0","plugins":[{"type":"flannel"},{"type":"portmap"}]}`)
	writeConf(t, dir, "README", "not a configuration")
	conf, err := firstNetConf(dir)
	if err != nil {
		t.Fatal(err)
	}
	if conf.Name != "cbr0" || len(conf.Plugins) != 2 || conf.Plugins[0].Network.Type != "flannel" {
		t.Errorf("picked %s with %d plugins, want cbr0 (10-flannel.conflist sorts first)", conf.Name, len(conf.Plugins))
	}
	writeConf(t, dir, "05-single.conf", `{"cniVersion":"1.0.0","name":"single","type":"bridge"}`)
	conf, err = firstNetConf(dir)
	if err != nil {
		t.Fatal(err)
	}
	if conf.Name != "single" || len(conf.Plugins) != 1 {
		t.Errorf("picked %s, want the single plugin's configuration as a list", conf.Name)
	}
}

func TestNoNetConfIsNetworkNotReady(t *testing.T) {
	for name, dir := range map[string]string{"empty": t.TempDir(), "missing": filepath.Join(t.TempDir(), "none")} {
		if _, err := firstNetConf(dir); !errors.Is(err, errNetworkNotReady) {
			t.Errorf("%s dir: error %v, want network not ready", name, err)
		}
	}
	dir := t.TempDir()
	writeConf(t, dir, "10-half.conflist", `{"cniVersion":`)
	if _, err := firstNetConf(dir); !errors.Is(err, errNetworkNotReady) || !strings.Contains(err.Error(), "10-half.conflist") {
		t.Errorf("a half-written configuration: error %v, want network not ready naming it", err)
	}
}

// The node is NotReady (NetworkPluginNotReady) until its CNI writes a
// configuration, then Ready; the configuration found is kept.
func TestNodeReadyOnceNetworkConfigured(t *testing.T) {
	dir := t.TempDir()
	client := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}})
	a := &Agent{cfg: Config{NodeName: "n1", CNIConfDir: dir, Log: slog.New(slog.DiscardHandler)}, client: client}
	ctx := context.Background()
	condition := func() corev1.NodeCondition {
		t.Helper()
		node, err := client.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(node.Status.Conditions) != 1 {
			t.Fatalf("conditions %v", node.Status.Conditions)
		}
		return node.Status.Conditions[0]
	}
	ready, err := a.reportCondition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := condition(); ready || c.Status != corev1.ConditionFalse || c.Reason != "NetworkPluginNotReady" || !strings.Contains(c.Message, dir) {
		t.Errorf("without a configuration: ready %v, condition %+v", ready, c)
	}
	writeConf(t, dir, "10-flannel.conflist", `{"cniVersion":"1.0.0","name":"cbr0","plugins":[{"type":"flannel"}]}`)
	if ready, err = a.reportCondition(ctx); err != nil {
		t.Fatal(err)
	}
	if c := condition(); !ready || c.Status != corev1.ConditionTrue {
		t.Errorf("with a configuration: ready %v, condition %+v", ready, c)
	}
	writeConf(t, dir, "00-later.conflist", `{"cniVersion":"1.0.0","name":"later","plugins":[{"type":"bridge"}]}`)
	if conf, err := a.netConf(); err != nil || conf.Name != "cbr0" {
		t.Errorf("after another configuration appeared: %v, %v, want cbr0 kept", conf, err)
	}
}
