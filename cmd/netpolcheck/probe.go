package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/netpolcheck/netpolcheck/cluster/kubeconfig"
	"github.com/netpolcheck/netpolcheck/cluster/local"
	"github.com/netpolcheck/netpolcheck/cluster/observe"
	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/probes/transport"
)

// runProbe probes the reachability between the running pods of some
// namespaces of a live cluster, right now, and compares it with what the
// NetworkPolicies in force there say.
func runProbe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("probe", stderr)
	namespaces := fs.String("namespaces", "", "comma-separated namespaces whose running pods are probed")
	localName := fs.String("local", "", "probe the local cluster of this name (from inside the pods' network namespaces); default: --kubeconfig")
	localState := fs.String("local-state", "", "state directory of the local cluster (default "+local.DefaultStateRoot+"/NAME)")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the cluster, kube exec into each pod's probe container (default: $KUBECONFIG, which may list several files, else ~/.kube/config)")
	kubeContext := fs.String("context", "", "with a kubeconfig: the context to use (default: its current context)")
	container := fs.String("container", "probe", "with --kubeconfig: the container of each pod to run netpolcheck-probe in")
	timeout := fs.Duration("timeout", time.Second, "probe timeout")
	retry := fs.Duration("retry", 0, "retry cells that disagree for this long (0: probe once)")
	output := fs.String("output", "text", "text or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := required(map[string]string{"namespaces": *namespaces}); err != nil {
		return err
	}
	if *output != "text" && *output != "json" {
		return usageError{fmt.Errorf("--output must be text or json, not %q", *output)}
	}
	target, err := probeTarget(*localName, *localState, *kubeconfig, *kubeContext, *container)
	if err != nil {
		return err
	}
	nss := strings.Split(*namespaces, ",")
	model, pods, err := observe.Running(ctx, target.client, nss)
	if err != nil {
		return err
	}
	if len(model.Pods) == 0 {
		return fmt.Errorf("no running pod in %s", *namespaces)
	}
	policies, err := observe.Policies(ctx, target.client, nss)
	if err != nil {
		return err
	}
	engine, err := matrix.NewEngine(model, policies)
	if err != nil {
		return err
	}
	uids := map[string]string{}
	for name, pod := range pods {
		uids[name] = string(pod.UID)
	}
	runner := &matrix.Runner{Transport: target.transport(uids), ProbeTimeout: *timeout, Convergence: -1,
		Progress: progressPrinter(stderr)}
	if *retry > 0 {
		runner.Convergence = *retry
	}
	rep, err := runner.Run(ctx, engine.Table(), engine.Endpoints())
	if err != nil {
		return err
	}
	failures := rep.Failures()
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Cells            []*matrix.CellResult `json:"cells"`
			Wrong            int                  `json:"wrong"`
			Rounds           int                  `json:"rounds"`
			TransportRetries int                  `json:"transportRetries,omitempty"`
		}{rep.Cells, len(failures), rep.Rounds, rep.TransportRetries}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "%d pods, %d policies, %d cells probed in %s: %d agree with the NetworkPolicy API, %d do not\n",
			len(model.Pods), len(policies), len(rep.Cells), rep.Duration.Round(time.Millisecond), len(rep.Cells)-len(failures), len(failures))
		fmt.Fprint(stdout, rep.FailureMessage(engine))
	}
	if len(failures) > 0 {
		return fmt.Errorf("%d of %d cells disagree with the NetworkPolicy API", len(failures), len(rep.Cells))
	}
	return nil
}

// cluster is the cluster a probe command talks to, and how probes run there.
type cluster struct {
	client    kubernetes.Interface
	transport func(uids map[string]string) matrix.Transport
}

func probeTarget(localName, localState, kubeconfigPaths, kubeContext, container string) (cluster, error) {
	if localName != "" {
		if kubeconfigPaths != "" || kubeContext != "" {
			return cluster{}, usageError{errors.New("--local probes the local cluster: give no --kubeconfig or --context with it")}
		}
		if localState == "" {
			localState = local.DefaultStateRoot + "/" + localName
		}
		c, err := local.Load(localState)
		if err != nil {
			return cluster{}, err
		}
		client, err := c.Client()
		if err != nil {
			return cluster{}, err
		}
		return cluster{client: client, transport: func(uids map[string]string) matrix.Transport { return c.ProbeTransport(uids) }}, nil
	}
	cfg, err := kubeconfig.Load(kubeconfigPaths, kubeContext)
	if err != nil {
		return cluster{}, err
	}
	return kubeTarget(cfg, container)
}

func kubeTarget(cfg *rest.Config, container string) (cluster, error) {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return cluster{}, fmt.Errorf("kube client: %w", err)
	}
	exec := transport.NewKubeExec(cfg, client, container)
	return cluster{client: client, transport: func(map[string]string) matrix.Transport { return exec }}, nil
}

// progressPrinter returns a live count of probed cells for a terminal, and
// nothing when w is not one (CI logs stay quiet).
func progressPrinter(w io.Writer) func(done, total int) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return func(done, total int) {
		fmt.Fprintf(w, "\r\033[Kprobing: %d of %d cells", done, total)
		if done == total {
			fmt.Fprint(w, "\r\033[K")
		}
	}
}
