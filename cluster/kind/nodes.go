package kind

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/netpolcheck/netpolcheck/cluster/cni"
)

// installCNI installs the CNI into the cluster of kubeconfig and waits for
// every node to be Ready (nodes stay NotReady until a CNI configures their
// pod network, so with "none" it does not wait).
func installCNI(ctx context.Context, opts Options, installer cni.Installer, kubeconfig string) error {
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("loading %s: %w", kubeconfig, err)
	}
	if err := cni.Install(ctx, config, installer, opts.Timeout, opts.Progress); err != nil {
		return fmt.Errorf("kind cluster %s: %w", opts.Name, err)
	}
	if installer.Name() == "none" {
		fmt.Fprintf(opts.Progress, "kind: no CNI installed: nodes stay NotReady and pods get no IPs until you install one\n")
		return nil
	}
	if !installer.EnforcesPolicy() {
		fmt.Fprintf(opts.Progress, "kind: %s does not enforce NetworkPolicy: every case that expects a denial will fail\n", installer.Name())
	}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return fmt.Errorf("kube client: %w", err)
	}
	fmt.Fprintf(opts.Progress, "kind: waiting up to %s for %d nodes to be Ready\n", opts.Timeout, opts.Workers+1)
	if err := waitNodesReady(ctx, client, opts.Workers+1, opts.Timeout); err != nil {
		return fmt.Errorf("kind cluster %s with CNI %s: %w", opts.Name, installer.Name(), err)
	}
	return nil
}

// waitNodesReady waits until want nodes exist and all are Ready; the
// timeout error names each node that is not, with its Ready condition's
// message (for example "container runtime network not ready").
func waitNodesReady(ctx context.Context, client kubernetes.Interface, want int, timeout time.Duration) error {
	var problems []string
	err := wait.PollUntilContextTimeout(ctx, 2*time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, fmt.Errorf("listing nodes: %w", err)
		}
		problems = problems[:0]
		if len(nodes.Items) < want {
			problems = append(problems, fmt.Sprintf("%d of %d nodes registered", len(nodes.Items), want))
		}
		for _, n := range nodes.Items {
			if problem := nodeProblem(&n); problem != "" {
				problems = append(problems, n.Name+": "+problem)
			}
		}
		return len(problems) == 0, nil
	})
	if err != nil && len(problems) > 0 {
		return fmt.Errorf("nodes not ready after %s: %s", timeout, strings.Join(problems, "; "))
	}
	return err
}

// nodeProblem says why a node is not Ready ("" when it is).
func nodeProblem(n *corev1.Node) string {
	for _, c := range n.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		if c.Status == corev1.ConditionTrue {
			return ""
		}
		return strings.TrimSpace("NotReady " + c.Message)
	}
	return "no Ready condition yet"
}
