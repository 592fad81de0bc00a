package transport

import (
	"context"
	"errors"
	"io"
	"net/url"
	"slices"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/probes/batch"
)

// fakeExecutor stands in for the exec session: it runs the batch agent's
// code in-process on the session's streams, with a fake probe function.
type fakeExecutor struct {
	probe batch.ProbeFunc
	err   error
}

func (f fakeExecutor) Stream(opts remotecommand.StreamOptions) error {
	return f.StreamWithContext(context.Background(), opts)
}

func (f fakeExecutor) StreamWithContext(ctx context.Context, opts remotecommand.StreamOptions) error {
	if f.err != nil {
		io.WriteString(opts.Stderr, "container not found")
		return f.err
	}
	return batch.Run(ctx, opts.Stdin, opts.Stdout, f.probe, 0)
}

func newTestKubeExec(t *testing.T, exec fakeExecutor, opts ...KubeExecOption) (*KubeExec, *[]*url.URL) {
	t.Helper()
	config := &rest.Config{Host: "https://apiserver.invalid:6443"}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	k := NewKubeExec(config, client, "probe", opts...)
	var urls []*url.URL
	k.newExecutor = func(c *rest.Config, u *url.URL) (remotecommand.Executor, error) {
		if c != config {
			t.Errorf("executor built from another rest.Config")
		}
		urls = append(urls, u)
		return exec, nil
	}
	return k, &urls
}

func TestKubeExecBuildsTheExecRequest(t *testing.T) {
	connected := func(ctx context.Context, p matrix.Probe) matrix.Result {
		return matrix.Result{ID: p.ID, Outcome: matrix.Connected, Peer: p.Expect + "/serve-80-tcp"}
	}
	k, urls := newTestKubeExec(t, fakeExecutor{probe: connected}, WithWorkers(64), WithBinary("/bin/netpolcheck-probe"))
	source := matrix.Endpoint{Name: "x-1/a", Namespace: "x-1", Pod: "a"}
	probes := []matrix.Probe{
		{ID: 7, Host: "10.244.1.3", Port: 80, Protocol: "TCP", Expect: "y-1/b", TimeoutMillis: 1000},
		{ID: 8, Host: "10.244.1.4", Port: 80, Protocol: "TCP", Expect: "z-1/c", TimeoutMillis: 1000},
	}
	results, err := k.RunBatch(context.Background(), source, probes)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 || results[0].Outcome != matrix.Connected {
		t.Errorf("results = %+v", results)
	}
	if len(*urls) != 1 {
		t.Fatalf("%d exec sessions for one batch, want 1", len(*urls))
	}
	u := (*urls)[0]
	if u.Host != "apiserver.invalid:6443" || u.Path != "/api/v1/namespaces/x-1/pods/a/exec" {
		t.Errorf("exec URL = %s", u)
	}
	q := u.Query()
	if got, want := q["command"], []string{"/bin/netpolcheck-probe", "batch", "--workers", "64"}; !slices.Equal(got, want) {
		t.Errorf("command = %q, want %q", got, want)
	}
	for key, want := range map[string]string{"container": "probe", "stdin": "true", "stdout": "true", "stderr": "true", "tty": ""} {
		if got := q.Get(key); got != want {
			t.Errorf("query %s = %q, want %q", key, got, want)
		}
	}
}

func TestKubeExecDefaultCommand(t *testing.T) {
	k, _ := newTestKubeExec(t, fakeExecutor{})
	if got, want := k.command(), []string{DefaultBinary, "batch"}; !slices.Equal(got, want) {
		t.Errorf("command = %q, want %q", got, want)
	}
}

func TestKubeExecReportsSessionFailure(t *testing.T) {
	k, _ := newTestKubeExec(t, fakeExecutor{err: errors.New("command terminated with exit code 126")})
	_, err := k.RunBatch(context.Background(), matrix.Endpoint{Name: "x/a", Namespace: "x", Pod: "a"}, []matrix.Probe{{ID: 1}})
	if err == nil || !strings.Contains(err.Error(), "exit code 126") || !strings.Contains(err.Error(), "container not found") {
		t.Errorf("error = %v", err)
	}
}

func TestKubeExecRejectsExternalSource(t *testing.T) {
	k, urls := newTestKubeExec(t, fakeExecutor{})
	_, err := k.RunBatch(context.Background(), matrix.Endpoint{Name: "ext", External: true}, []matrix.Probe{{ID: 1}})
	if err == nil || len(*urls) != 0 {
		t.Errorf("external source: err %v, %d sessions", err, len(*urls))
	}
}

func TestDefaultExecutorConstruction(t *testing.T) {
	u, _ := url.Parse("https://apiserver.invalid:6443/api/v1/namespaces/x/pods/a/exec")
	exec, err := websocketWithSPDYFallback(&rest.Config{Host: "https://apiserver.invalid:6443"}, u)
	if err != nil || exec == nil {
		t.Fatalf("executor = %v, %v", exec, err)
	}
	if _, ok := exec.(*remotecommand.FallbackExecutor); !ok {
		t.Errorf("executor is %T, want the WebSocket-with-SPDY-fallback executor", exec)
	}
}
