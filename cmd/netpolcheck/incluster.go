package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/netpolcheck/netpolcheck/cluster/incluster"
	"github.com/netpolcheck/netpolcheck/cluster/kubeconfig"
	"github.com/netpolcheck/netpolcheck/suites/framework"
)

// runManifest is netpolcheck manifest job|sonobuoy: the YAML that runs the
// suites inside a cluster.
func runManifest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	kinds := map[string]func(incluster.Options) ([]byte, error){"job": incluster.Job, "sonobuoy": incluster.SonobuoyYAML}
	sub := func(name, summary string) subcommand {
		return subcommand{name: name, summary: summary, run: func(_ context.Context, args []string, stdout, stderr io.Writer) error {
			o, err := parseManifestFlags(name, args, stderr)
			if err != nil {
				return err
			}
			data, err := kinds[name](o)
			if err != nil {
				return err
			}
			_, err = stdout.Write(data)
			return err
		}}
	}
	return runSubcommand(ctx, "manifest", []subcommand{
		sub("job", "the Job that runs the suites in the cluster, with its namespace, service account and least RBAC"),
		sub("sonobuoy", "a Sonobuoy plugin definition (JUnit results) that runs the suites"),
	}, args, stdout, stderr)
}

// parseManifestFlags reads the flags of manifest job|sonobuoy; what follows
// -- is passed on to netpolcheck run.
func parseManifestFlags(name string, args []string, stderr io.Writer) (incluster.Options, error) {
	var runArgs []string
	if i := slices.Index(args, "--"); i >= 0 {
		args, runArgs = args[:i], args[i+1:]
	}
	fs := newFlagSet("manifest "+name+" [flags] [-- RUN FLAGS]", stderr)
	o := incluster.Options{RunArgs: runArgs}
	fs.StringVar(&o.Namespace, "namespace", "netpolcheck", "the namespace of the Job and its service account")
	fs.StringVar(&o.Name, "name", "netpolcheck", "the name of the Job (or plugin), its service account, ClusterRole and binding")
	fs.StringVar(&o.Image, "image", framework.DefaultImage, "the project's image (netpolcheck, the compiled suites, the probe agent)")
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	return o, required(map[string]string{"namespace": o.Namespace, "name": o.Name, "image": o.Image})
}

// runJobReports is netpolcheck job-reports: it waits for the Job of
// manifest job to finish and writes the reports its pod printed to its log
// into --out.
func runJobReports(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("job-reports", stderr)
	kc := fs.String("kubeconfig", "", "the cluster's kubeconfig (default: $KUBECONFIG, else ~/.kube/config)")
	kctx := fs.String("context", "", "the kubeconfig context (default: its current context)")
	namespace := fs.String("namespace", "netpolcheck", "the Job's namespace")
	name := fs.String("name", "netpolcheck", "the Job's name")
	out := fs.String("out", "netpolcheck-out", "directory for the reports")
	timeout := fs.Duration("timeout", time.Hour, "how long to wait for the Job to finish")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *kc == "" {
		*kc = defaultKubeconfig()
	}
	cfg, err := kubeconfig.Load(*kc, *kctx)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kube client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	return jobReports(ctx, client, *namespace, *name, *out, stdout)
}

// jobReports waits for the Job to finish, writes the reports of its pod's
// log into out, and fails when the Job failed or left no reports.
func jobReports(ctx context.Context, client kubernetes.Interface, namespace, name, out string, stdout io.Writer) error {
	job, err := waitForJob(ctx, client, namespace, name)
	if err != nil {
		return err
	}
	log, err := jobLog(ctx, client, job)
	if err != nil {
		return err
	}
	outcome := jobOutcome(job)
	files, err := incluster.ReadBundle(bytes.NewReader(log), out)
	if errors.Is(err, incluster.ErrNoBundle) {
		return fmt.Errorf("job %s/%s %s without reports; the end of its log:\n%s", namespace, name, outcome, lastLines(log, 30))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "job %s/%s %s; reports in %s: %s\n", namespace, name, outcome, out, strings.Join(files, " "))
	if outcome != "succeeded" {
		return fmt.Errorf("job %s/%s failed: see the reports", namespace, name)
	}
	return nil
}

// waitForJob polls the Job until it has completed or failed.
func waitForJob(ctx context.Context, client kubernetes.Interface, namespace, name string) (*batchv1.Job, error) {
	var job *batchv1.Job
	err := wait.PollUntilContextCancel(ctx, 2*time.Second, true, func(ctx context.Context) (bool, error) {
		j, err := client.BatchV1().Jobs(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, fmt.Errorf("reading job %s/%s: %w", namespace, name, err)
		}
		job = j
		return jobOutcome(j) != "", nil
	})
	if err != nil && job != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("job %s/%s did not finish in time: %w", namespace, name, err)
	}
	return job, err
}

// jobOutcome is "succeeded" or "failed" for a finished Job, else "".
func jobOutcome(job *batchv1.Job) string {
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return "succeeded"
		case batchv1.JobFailed:
			return "failed"
		}
	}
	return ""
}

// jobLog is the log of the netpolcheck container of the Job's latest pod.
func jobLog(ctx context.Context, client kubernetes.Interface, job *batchv1.Job) ([]byte, error) {
	pods, err := client.CoreV1().Pods(job.Namespace).List(ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + job.Name})
	if err != nil {
		return nil, fmt.Errorf("the pods of job %s/%s: %w", job.Namespace, job.Name, err)
	}
	if len(pods.Items) == 0 {
		return nil, fmt.Errorf("job %s/%s has no pod left to read the reports from", job.Namespace, job.Name)
	}
	latest := slices.MaxFunc(pods.Items, func(a, b corev1.Pod) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
	log, err := client.CoreV1().Pods(job.Namespace).GetLogs(latest.Name, &corev1.PodLogOptions{Container: incluster.Container}).DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("the log of pod %s/%s: %w", latest.Namespace, latest.Name, err)
	}
	return log, nil
}

// lastLines is the last n lines of a log.
func lastLines(log []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(log), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
