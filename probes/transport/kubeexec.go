package transport

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/streaming/pkg/httpstream"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/probes/batch"
)

// DefaultBinary is where the probe image keeps netpolcheck-probe.
const DefaultBinary = "/netpolcheck-probe"

// executorFactory builds the remotecommand executor for one exec request.
type executorFactory func(config *rest.Config, execURL *url.URL) (remotecommand.Executor, error)

// KubeExec runs each batch with `netpolcheck-probe batch` in a container of
// the source pod, through the exec subresource (the transport upstream's
// netpol e2e uses, with one exec per source pod instead of one per probe).
type KubeExec struct {
	config      *rest.Config
	client      kubernetes.Interface
	container   string
	binary      string
	workers     int
	newExecutor executorFactory
}

var _ matrix.Transport = (*KubeExec)(nil)

// KubeExecOption adjusts a KubeExec.
type KubeExecOption func(*KubeExec)

// WithBinary sets the path of netpolcheck-probe in the image (default
// DefaultBinary).
func WithBinary(path string) KubeExecOption { return func(k *KubeExec) { k.binary = path } }

// WithWorkers caps the probes a batch runs at once (default: the agent's).
func WithWorkers(n int) KubeExecOption { return func(k *KubeExec) { k.workers = n } }

// NewKubeExec returns a transport that execs into container of each source
// pod. config must be the configuration client was built from.
func NewKubeExec(config *rest.Config, client kubernetes.Interface, container string, opts ...KubeExecOption) *KubeExec {
	k := &KubeExec{config: config, client: client, container: container, binary: DefaultBinary, newExecutor: websocketWithSPDYFallback}
	for _, o := range opts {
		o(k)
	}
	return k
}

// RunBatch implements matrix.Transport.
func (k *KubeExec) RunBatch(ctx context.Context, source matrix.Endpoint, probes []matrix.Probe) ([]matrix.Result, error) {
	if source.External || source.Namespace == "" || source.Pod == "" {
		return nil, fmt.Errorf("probing from %s: kube exec needs a pod as the source", source.Name)
	}
	execURL := k.execURL(source)
	executor, err := k.newExecutor(k.config, execURL)
	if err != nil {
		return nil, fmt.Errorf("probing from %s: creating the exec session: %w", source.Name, err)
	}
	results, err := batch.Exchange(ctx, probes, func(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) error {
		return executor.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: stdout, Stderr: stderr})
	})
	if err != nil {
		return nil, fmt.Errorf("probing from %s (exec into container %s): %w", source.Name, k.container, err)
	}
	return results, nil
}

// command is what runs in the container.
func (k *KubeExec) command() []string {
	cmd := []string{k.binary, "batch"}
	if k.workers > 0 {
		cmd = append(cmd, "--workers", strconv.Itoa(k.workers))
	}
	return cmd
}

// execURL is the pods/exec request for the source pod, as kubectl exec builds it.
func (k *KubeExec) execURL(source matrix.Endpoint) *url.URL {
	return k.client.CoreV1().RESTClient().Post().
		Resource("pods").
		Namespace(source.Namespace).
		Name(source.Pod).
		SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{
			Container: k.container,
			Command:   k.command(),
			Stdin:     true,
			Stdout:    true,
			Stderr:    true,
		}, scheme.ParameterCodec).
		URL()
}

// websocketWithSPDYFallback is kubectl's executor: WebSocket (RemoteCommand
// v5) first, SPDY when the API server or a proxy cannot upgrade to it.
func websocketWithSPDYFallback(config *rest.Config, execURL *url.URL) (remotecommand.Executor, error) {
	spdy, err := remotecommand.NewSPDYExecutor(config, "POST", execURL)
	if err != nil {
		return nil, fmt.Errorf("SPDY executor: %w", err)
	}
	websocket, err := remotecommand.NewWebSocketExecutor(config, "GET", execURL.String())
	if err != nil {
		return nil, fmt.Errorf("WebSocket executor: %w", err)
	}
	return remotecommand.NewFallbackExecutor(websocket, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
}
