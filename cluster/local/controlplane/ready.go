package controlplane

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/netpolcheck/netpolcheck/cluster/local/controlplane/detached"
)

// pollInterval is how often readiness is checked while starting.
const pollInterval = 100 * time.Millisecond

// readinessCheck is one condition of a ready control plane. It returns nil
// when the condition holds, or an error that says why not yet.
type readinessCheck struct {
	name  string
	check func(context.Context) error
}

// readinessChecks are the conditions of a ready control plane.
type readinessChecks struct {
	client     kubernetes.Interface
	httpClient *http.Client
	ports      ports
}

func newReadinessChecks(restConfig *rest.Config, p ports) (*readinessChecks, error) {
	clientConfig := rest.CopyConfig(restConfig)
	clientConfig.Timeout = 5 * time.Second
	client, err := kubernetes.NewForConfig(clientConfig)
	if err != nil {
		return nil, fmt.Errorf("creating admin client: %w", err)
	}
	// The controller-manager and the scheduler serve /healthz with a
	// certificate from the cluster CA and accept the admin client
	// certificate, so the admin client's transport fits them too.
	httpClient, err := rest.HTTPClientFor(clientConfig)
	if err != nil {
		return nil, fmt.Errorf("creating health-check client: %w", err)
	}
	return &readinessChecks{client: client, httpClient: httpClient, ports: p}, nil
}

// apiServer checks that the API server (and so etcd) is ready.
func (r *readinessChecks) apiServer() []readinessCheck {
	return []readinessCheck{
		{"kube-apiserver /readyz", func(ctx context.Context) error {
			return r.client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error()
		}},
		{"namespace default", func(ctx context.Context) error {
			_, err := r.client.CoreV1().Namespaces().Get(ctx, metav1.NamespaceDefault, metav1.GetOptions{})
			return err
		}},
	}
}

// controllers checks that the controller-manager and the scheduler serve
// and that the service-account controller has done its first work.
func (r *readinessChecks) controllers() []readinessCheck {
	return []readinessCheck{
		{"kube-controller-manager /healthz", healthz(r.httpClient, loopbackURL("https", r.ports.controllerManager))},
		{"kube-scheduler /healthz", healthz(r.httpClient, loopbackURL("https", r.ports.scheduler))},
		{"service account default/default", func(ctx context.Context) error {
			_, err := r.client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
			return err
		}},
	}
}

// waitFor waits until every check passes, in order, while all processes keep
// running. A process that exits fails the start at once, with the end of its
// log; a timeout reports the check that did not pass.
func waitFor(ctx context.Context, procs []detached.Process, checks []readinessCheck) error {
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for _, c := range checks {
		for {
			if err := exitedProcess(procs); err != nil {
				return err
			}
			err := c.check(ctx)
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("control plane not ready: waiting for %s: %w (last error: %v)%s", c.name, ctx.Err(), err, logTails(procs))
			case <-ticker.C:
			}
		}
	}
	return nil
}

// healthz returns a check that GETs base/healthz and expects 200 OK.
func healthz(client *http.Client, base string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s/healthz: %s", base, resp.Status)
		}
		return nil
	}
}

// exitedProcess returns an error naming the first process that is no longer
// running, with the end of its log.
func exitedProcess(procs []detached.Process) error {
	for _, p := range procs {
		if !p.Alive() {
			return fmt.Errorf("%s (pid %d) exited during start; end of its log %s:\n%s", p.Name, p.PID, p.LogFile, logTail(p.LogFile))
		}
	}
	return nil
}

// logTails returns the end of every process's log, for a start that timed out.
func logTails(procs []detached.Process) string {
	var b strings.Builder
	for _, p := range procs {
		fmt.Fprintf(&b, "\n--- end of %s:\n%s", p.LogFile, logTail(p.LogFile))
	}
	return b.String()
}

// logTail returns the last lines of a log file.
func logTail(path string) string {
	const maxLines = 15
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
