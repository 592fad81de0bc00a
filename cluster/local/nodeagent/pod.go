package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"

	"github.com/netpolcheck/netpolcheck/cluster/local/kubeletapi"
	"github.com/netpolcheck/netpolcheck/cluster/local/netns"
)

// readyTimeout bounds how long a container has to say it listens.
const readyTimeout = 10 * time.Second

// podRuntime is what the agent runs for one pod.
type podRuntime struct {
	uid   types.UID
	netns string // empty for hostNetwork pods
	ips   []string
	procs []*process
	// dir is the pod's directory under Config.PodsDir (empty until made).
	dir string
	// stop ends done: what runs for the pod besides its processes (token
	// refresh, restarts).
	stop context.CancelFunc
	done context.Context
	// running is closed once the pod's start is reported.
	running chan struct{}
	// initStatuses are the statuses of its init containers, all completed.
	initStatuses []corev1.ContainerStatus
	// key, namespace and name identify the pod; restartPolicy is its.
	key, namespace, name string
	restartPolicy        corev1.RestartPolicy
	// containers are the names of all containers, with a process or not.
	containers []string
	// pod is the pod as it was started.
	pod *corev1.Pod
	// finished counts the containers (not sidecars) that terminated for
	// good; mu guards it.
	mu       sync.Mutex
	finished int
}

// process is one container's process (its shim, which execs the
// container's command: Pid is the container's main process), restarted
// when it exits.
type process struct {
	container string
	spec      *corev1.Container
	argv      []string // the shim's command line
	// newUTS gives the container its own UTS namespace (its hostname).
	newUTS        bool
	waitsForReady bool
	// logDir holds one CRI log file per run (see containerLog).
	logDir string
	// openStdin keeps a stdin pipe for attach; stdinOnce closes it after
	// the first attached client's stdin ends.
	openStdin, stdinOnce bool
	ready                chan struct{} // closed once the server said "ready" (or at start, for other commands)
	// backoffs counts the exits since the backoff was last reset.
	backoffs int

	mu       sync.Mutex
	cmd      *exec.Cmd
	stopped  bool
	exited   chan struct{}
	restarts int // runs before the current one
	// startedAt is when the current run started.
	startedAt time.Time
	logPath   string // the current run's log
	log       *containerLog
	stdin     io.WriteCloser // nil without openStdin, or once closed
	// exit is set once the container exited for good (see restarts).
	exit *corev1.ContainerStateTerminated
}

func (a *Agent) runtimeConf(pod *corev1.Pod, path string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID: string(pod.UID),
		NetNS:       path,
		IfName:      "eth0",
		Args: [][2]string{
			{"IgnoreUnknown", "true"},
			{"K8S_POD_NAMESPACE", pod.Namespace},
			{"K8S_POD_NAME", pod.Name},
			{"K8S_POD_UID", string(pod.UID)},
		},
	}
}

// startPod creates the pod's namespace, attaches it, starts its containers,
// waits until they listen and reports the pod Running and Ready.
func (a *Agent) startPod(ctx context.Context, key string, pod *corev1.Pod) (err error) {
	started := time.Now()
	done, stop := context.WithCancel(context.WithoutCancel(ctx))
	rt := &podRuntime{uid: pod.UID, pod: pod, key: key, namespace: pod.Namespace, name: pod.Name, restartPolicy: pod.Spec.RestartPolicy,
		done: done, stop: stop, running: make(chan struct{})}
	defer func() {
		if err != nil {
			// Forget the pod, so that the retry starts it afresh.
			a.mu.Lock()
			if a.pods[key] == rt {
				delete(a.pods, key)
			}
			a.mu.Unlock()
			err = errors.Join(err, a.teardown(context.WithoutCancel(ctx), key, rt))
		}
	}()
	if pod.Spec.HostNetwork {
		rt.ips = []string{a.cfg.NodeIP}
	} else {
		conf, err := a.netConf()
		if err != nil {
			return fmt.Errorf("pod %s: %w", key, err)
		}
		rt.netns = a.cfg.PodNetnsPrefix + uidShort(pod.UID)
		if err := netns.Create(rt.netns); err != nil {
			return err
		}
		res, err := a.cni.AddNetworkList(ctx, conf, a.runtimeConf(pod, netns.Path(rt.netns)))
		if err != nil {
			return fmt.Errorf("CNI ADD for %s: %w", key, err)
		}
		result, err := current.NewResultFromResult(res)
		if err != nil {
			return fmt.Errorf("CNI result for %s: %w", key, err)
		}
		for _, ip := range result.IPs {
			rt.ips = append(rt.ips, ip.Address.IP.String())
		}
		if len(rt.ips) == 0 {
			return fmt.Errorf("CNI gave %s no address", key)
		}
	}
	withIP := pod.DeepCopy()
	withIP.Status.PodIP = rt.ips[0]
	for _, ip := range rt.ips {
		withIP.Status.PodIPs = append(withIP.Status.PodIPs, corev1.PodIP{IP: ip})
	}
	withIP.Status.HostIP = a.cfg.NodeIP
	withIP.Status.HostIPs = []corev1.HostIP{{IP: a.cfg.NodeIP}}
	podDir := fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, uidShort(pod.UID))
	rt.dir = filepath.Join(a.cfg.PodsDir, podDir)
	if err := os.MkdirAll(rt.dir, 0o755); err != nil {
		return fmt.Errorf("pod %s: %w", key, err)
	}
	vols, err := a.prepareVolumes(ctx, withIP, filepath.Join(rt.dir, "volumes"))
	if err != nil {
		return fmt.Errorf("pod %s: %w", key, err)
	}
	if err := writePodFiles(rt.dir, a.podFiles(withIP)); err != nil {
		return fmt.Errorf("pod %s: %w", key, err)
	}
	var launches []launch
	serving := servingContainers(pod)
	envs := map[string][]string{}
	for _, c := range serving {
		rt.containers = append(rt.containers, c.Name)
		l, err := a.containerLaunch(ctx, withIP, c, vols, rt.dir)
		if errors.Is(err, errImageNotMapped) {
			// As a kubelet that cannot pull: the pod stays Pending and says why.
			if err := a.reportImagePullFailure(ctx, pod, c.Name, err); err != nil {
				return err
			}
			a.mu.Lock()
			a.pods[key] = rt
			a.mu.Unlock()
			return nil
		}
		if err != nil {
			return fmt.Errorf("pod %s: %w", key, err)
		}
		launches = append(launches, l)
		envs[c.Name] = l.spec.Env
	}
	keepVolumesSynced(rt.done, vols.synced, volumeSyncPeriod, a.cfg.Log.With("pod", key))
	if rt.initStatuses, err = a.runInitContainers(ctx, rt, withIP, vols, podDir); err != nil {
		if errors.Is(err, errPodFailed) {
			// restartPolicy Never: the pod has failed for good.
			a.mu.Lock()
			a.pods[key] = rt
			a.mu.Unlock()
			return nil
		}
		return fmt.Errorf("pod %s: %w", key, err)
	}
	for i, l := range launches {
		c := serving[i]
		if l.standIn {
			a.event(ctx, pod, corev1.EventTypeNormal, "StandIn", fmt.Sprintf(
				"container %s: the local cluster maps no image to %s; a probe server stands in for it on its declared ports", c.Name, c.Image))
		}
		argv, err := a.shimArgv(l)
		if err != nil {
			return fmt.Errorf("pod %s: container %s: %w", key, c.Name, err)
		}
		p := &process{
			container:     c.Name,
			spec:          c,
			argv:          argv,
			newUTS:        l.spec.Hostname != "",
			waitsForReady: l.waitsForReady,
			logDir:        filepath.Join(a.cfg.LogDir, podDir, c.Name),
			openStdin:     c.Stdin,
			stdinOnce:     c.StdinOnce,
			ready:         make(chan struct{}),
		}
		if err := a.startProcess(rt, p); err != nil {
			return fmt.Errorf("pod %s: container %s: %w", key, c.Name, err)
		}
		rt.procs = append(rt.procs, p)
	}
	a.mu.Lock()
	a.pods[key] = rt
	a.mu.Unlock()
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	for _, p := range rt.procs {
		select {
		case <-p.ready: // first: a container that is ready at once may have exited already
			continue
		default:
		}
		select {
		case <-p.ready:
		case <-p.exited:
			return fmt.Errorf("pod %s: container %s exited before it was ready (logs: %s)", key, p.container, p.logDir)
		case <-deadline.C:
			return fmt.Errorf("pod %s: container %s not ready after %s (logs: %s)", key, p.container, readyTimeout, p.logDir)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := a.reportRunning(ctx, pod, rt); err != nil {
		return err
	}
	close(rt.running)
	a.runProbes(rt, serving, envs)
	a.cfg.Log.Info("pod running", "pod", key, "ip", rt.ips[0], "containers", len(rt.procs), "took", time.Since(started).Round(time.Millisecond))
	return nil
}

// startProcess starts (or restarts) a container's process in the pod's
// namespace, with its output in the log of this run.
func (a *Agent) startProcess(rt *podRuntime, p *process) error {
	p.mu.Lock()
	if p.log != nil {
		p.restarts++
	}
	path := logPath(p.logDir, p.restarts)
	p.mu.Unlock()
	log, err := openContainerLog(path)
	if err != nil {
		return err
	}
	if p.stdinOnce {
		log.holdUntilAttached()
	}
	cmd := shimCommand(p.argv, p.newUTS)
	cmd.Stdout = log.stream(kubeletapi.StreamStdout, func(line string) {
		if line == "ready" {
			closeOnce(p.ready)
		}
	})
	cmd.Stderr = log.stream(kubeletapi.StreamStderr, nil)
	var stdin io.WriteCloser
	if p.openStdin {
		if stdin, err = cmd.StdinPipe(); err != nil {
			log.close()
			return err
		}
	}
	if err := rt.start(cmd); err != nil {
		log.close()
		return fmt.Errorf("starting %s: %w", strings.Join(p.argv, " "), err)
	}
	exited := make(chan struct{})
	started := time.Now()
	p.mu.Lock()
	p.cmd, p.exited, p.log, p.logPath, p.stdin, p.startedAt = cmd, exited, log, path, stdin, started
	p.mu.Unlock()
	if !p.waitsForReady {
		closeOnce(p.ready)
	}
	go func() {
		_ = cmd.Wait() // the exit is in cmd.ProcessState
		log.close()
		close(exited)
		p.mu.Lock()
		stopped := p.stopped
		p.mu.Unlock()
		if !stopped {
			a.afterExit(rt, p, started, cmd.ProcessState)
		}
	}()
	return nil
}

// shimCommand is the command of a container's shim: in a new mount
// namespace (and UTS namespace with newUTS), its own process group, with an
// empty environment (the shim gives the container its own).
func shimCommand(argv []string, newUTS bool) *exec.Cmd {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Cloneflags: syscall.CLONE_NEWNS}
	if newUTS {
		cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUTS
	}
	return cmd
}

// start starts cmd in the pod's network namespace (the node's for
// hostNetwork pods).
func (rt *podRuntime) start(cmd *exec.Cmd) error {
	if rt.netns == "" {
		return cmd.Start()
	}
	return netns.Start(rt.netns, cmd)
}

func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// stop terminates the process group: SIGTERM, then SIGKILL after 2s.
func (p *process) stop() {
	p.mu.Lock()
	p.stopped = true
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(2 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
}

// teardown stops the containers, detaches the network and removes the
// namespace. It is idempotent.
func (a *Agent) teardown(ctx context.Context, key string, rt *podRuntime) error {
	var wg sync.WaitGroup
	for _, p := range rt.procs {
		wg.Go(p.stop)
	}
	wg.Wait()
	if rt.stop != nil {
		rt.stop()
	}
	var errs []error
	if rt.dir != "" {
		if err := os.RemoveAll(rt.dir); err != nil {
			errs = append(errs, fmt.Errorf("removing the files of %s: %w", key, err))
		}
	}
	if rt.netns == "" {
		return errors.Join(errs...)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: rt.uid}}
	if ns, name, ok := strings.Cut(key, "/"); ok {
		pod.Namespace, pod.Name = ns, name
	}
	if conf, err := a.netConf(); err != nil {
		errs = append(errs, fmt.Errorf("CNI DEL for %s: %w", key, err))
	} else if err := a.cni.DelNetworkList(ctx, conf, a.runtimeConf(pod, netns.Path(rt.netns))); err != nil {
		errs = append(errs, fmt.Errorf("CNI DEL for %s: %w", key, err))
	}
	errs = append(errs, netns.Delete(rt.netns))
	return errors.Join(errs...)
}

// reportRunning writes the pod's status: Running, its IPs, and every
// condition and container Ready.
func (a *Agent) reportRunning(ctx context.Context, pod *corev1.Pod, rt *podRuntime) error {
	now := metav1.Now()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		latest, err := a.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if latest.UID != pod.UID {
			return apierrors.NewNotFound(corev1.Resource("pods"), pod.Name)
		}
		s := &latest.Status
		s.Phase = corev1.PodRunning
		s.HostIP = a.cfg.NodeIP
		s.HostIPs = []corev1.HostIP{{IP: a.cfg.NodeIP}}
		s.PodIP = rt.ips[0]
		s.PodIPs = nil
		for _, ip := range rt.ips {
			s.PodIPs = append(s.PodIPs, corev1.PodIP{IP: ip})
		}
		if s.StartTime == nil {
			s.StartTime = &now
		}
		s.Conditions = nil
		for _, t := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
			s.Conditions = append(s.Conditions, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now})
		}
		s.InitContainerStatuses = initContainerStatuses(&latest.Spec, rt.initStatuses, now)
		s.ContainerStatuses = nil
		for _, c := range latest.Spec.Containers {
			started, ready := startsAs(&c)
			s.ContainerStatuses = append(s.ContainerStatuses, corev1.ContainerStatus{
				Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: ready, Started: &started,
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
			})
		}
		summarize(s) // not Ready while a readiness probe has not succeeded
		_, err = a.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, latest, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("reporting pod %s/%s running: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}
