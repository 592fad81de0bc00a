package controlplane

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netpolcheck/netpolcheck/cluster/local/controlplane/detached"
)

func TestReapCleansStaleState(t *testing.T) {
	stateDir := t.TempDir()
	// A run that crashed: its files are still there and its PID now belongs
	// to another process (this test), which started at another time.
	stale := &state{
		Kubeconfig: filepath.Join(stateDir, "admin.kubeconfig"),
		Processes:  []detached.Process{{Name: "etcd", PID: os.Getpid(), StartTime: 0}},
	}
	if err := stale.write(stateDir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(stateDir, "etcd", "member"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale.Kubeconfig, []byte("stale"), 0o600); err != nil {
		t.Fatal(err)
	}

	if err := Reap(context.Background(), stateDir); err != nil {
		t.Fatalf("Reap: %v", err)
	}
	entries, err := os.ReadDir(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != lockName {
			t.Errorf("%s left in the state dir after Reap", e.Name())
		}
	}
}

func TestReapWithoutStateDir(t *testing.T) {
	if err := Reap(context.Background(), filepath.Join(t.TempDir(), "never-started")); err != nil {
		t.Fatalf("Reap of a state dir that does not exist: %v", err)
	}
}

func TestStartValidatesConfig(t *testing.T) {
	bins := binariesIn("/nonexistent", KubernetesVersion)
	for name, tc := range map[string]struct {
		cfg  Config
		want string
	}{
		"no state dir":    {Config{Binaries: bins}, "StateDir"},
		"no binaries":     {Config{StateDir: t.TempDir()}, "Binaries"},
		"bad service net": {Config{StateDir: t.TempDir(), Binaries: bins, ServiceCIDR: "10.96.0.0"}, "service CIDR"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Start(context.Background(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start: err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestServiceIPIsFirstAddressOfRange(t *testing.T) {
	_, ip, err := withDefaults(Config{StateDir: "x", Binaries: binariesIn("/bin", KubernetesVersion)})
	if err != nil {
		t.Fatal(err)
	}
	if ip.String() != "10.96.0.1" {
		t.Errorf("service IP = %s, want 10.96.0.1", ip)
	}
}

func TestKubeletAccessGoesThroughTheEgressProxy(t *testing.T) {
	dir := t.TempDir()
	path, err := writeEgressSelectorConfig(dir, "/run/x/egress.sock")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"kind": "EgressSelectorConfiguration"`, `"name": "cluster"`, `"proxyProtocol": "HTTPConnect"`, `"udsName": "/run/x/egress.sock"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("egress selector configuration lacks %s:\n%s", want, data)
		}
	}
	creds := credentials{caCert: "ca.crt", kubeletClientCert: "k.crt", kubeletClientKey: "k.key"}
	args := strings.Join(apiServerArgs(creds, ports{}, DefaultServiceCIDR, path), " ")
	for _, want := range []string{"--egress-selector-config-file=" + path, "--kubelet-preferred-address-types=InternalIP",
		"--kubelet-certificate-authority=ca.crt", "--kubelet-client-certificate=k.crt", "--kubelet-client-key=k.key"} {
		if !strings.Contains(args, want) {
			t.Errorf("kube-apiserver arguments lack %s", want)
		}
	}
	if strings.Contains(strings.Join(apiServerArgs(creds, ports{}, DefaultServiceCIDR, ""), " "), "egress") {
		t.Error("an egress selector without a socket")
	}
}

// The scheduler binds each pod with a request of its own: at its default
// client limits (50 a second, bursts of 100) a burst of 150 pods waited for
// its bindings.
func TestSchedulerBindsABurstWithoutClientThrottling(t *testing.T) {
	args := strings.Join(schedulerArgs(credentials{}, ports{}), " ")
	for _, want := range []string{"--kube-api-qps=500", "--kube-api-burst=1000"} {
		if !strings.Contains(args, want) {
			t.Errorf("kube-scheduler arguments lack %s: %s", want, args)
		}
	}
}
