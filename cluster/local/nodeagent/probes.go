package nodeagent

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Startup, readiness and liveness probes run as the kubelet runs them: from
// the node's network namespace to the pod's IP (tcpSocket, httpGet, success
// for a status from 200 to 399), or inside the container (exec, through
// nsenter into its mount and network namespaces and root, with its
// environment), every periodSeconds after initialDelaySeconds, each within
// timeoutSeconds; successThreshold and failureThreshold consecutive results
// change the state. Every run of a container starts its probes over: a
// container with a startup probe is not started (nor ready) until it
// succeeds, and its readiness and liveness probes wait until then; a
// container with a readiness probe is not Ready until it succeeds; a
// startup probe that fails failureThreshold times, or a liveness probe that
// fails, kills the container, which then restarts as its pod's
// restartPolicy says.

// probeKind is what a probe decides.
type probeKind int

const (
	readiness probeKind = iota
	liveness
	startup
)

// prober runs one probe of one container of a pod.
type prober struct {
	kind      probeKind
	probe     *corev1.Probe
	container *corev1.Container
	proc      *process
	podIP     string
	env       []string
	// started is the container's startup gate, shared by its probers.
	started *startupGate
}

// startupGate says which run of a container its startup probe has passed
// (nil: the container has no startup probe, every run is started), and
// wakes the container's readiness prober when it does.
type startupGate struct {
	mu     sync.Mutex
	passed int // the run (restarts before it) that passed; -1: none yet
	// opened is closed when a run passes, then replaced for the next one.
	opened chan struct{}
}

func newStartupGate(c *corev1.Container) *startupGate {
	if c.StartupProbe == nil {
		return nil
	}
	return &startupGate{passed: -1, opened: make(chan struct{})}
}

// open says whether run of the container has started.
func (g *startupGate) open(run int) bool {
	if g == nil {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.passed == run
}

func (g *startupGate) pass(run int) {
	g.mu.Lock()
	g.passed = run
	close(g.opened)
	g.opened = make(chan struct{})
	g.mu.Unlock()
}

// wake is closed when the next run passes (nil, never closed, without a
// gate).
func (g *startupGate) wake() <-chan struct{} {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.opened
}

// startsAs is a container's started and ready when a run of it begins:
// not started while a startup probe has to pass, not ready while a startup
// or readiness probe has to.
func startsAs(c *corev1.Container) (started, ready bool) {
	return c.StartupProbe == nil, c.StartupProbe == nil && c.ReadinessProbe == nil
}

// run is the container's current run: the restarts before it.
func (p *process) run() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restarts
}

// withDefaults returns the probe's timing with the API's defaults.
func probeTiming(p *corev1.Probe) (delay, period, timeout time.Duration, success, failure int32) {
	period, timeout, success, failure = 10*time.Second, time.Second, 1, 3
	if p.PeriodSeconds > 0 {
		period = time.Duration(p.PeriodSeconds) * time.Second
	}
	if p.TimeoutSeconds > 0 {
		timeout = time.Duration(p.TimeoutSeconds) * time.Second
	}
	if p.SuccessThreshold > 0 {
		success = p.SuccessThreshold
	}
	if p.FailureThreshold > 0 {
		failure = p.FailureThreshold
	}
	return time.Duration(p.InitialDelaySeconds) * time.Second, period, timeout, success, failure
}

// runProbes starts the startup, readiness and liveness probes of the pod's
// containers (those of rt.procs, in order); they end with the pod.
func (a *Agent) runProbes(rt *podRuntime, containers []*corev1.Container, envs map[string][]string) {
	for i, p := range rt.procs {
		c := containers[i]
		gate := newStartupGate(c)
		for kind, probe := range map[probeKind]*corev1.Probe{readiness: c.ReadinessProbe, liveness: c.LivenessProbe, startup: c.StartupProbe} {
			if probe == nil {
				continue
			}
			pr := &prober{kind: kind, probe: probe, container: c, proc: p, podIP: rt.ips[0], env: envs[c.Name], started: gate}
			go a.loop(rt, pr)
		}
	}
}

// loop probes every period. A new run of the container (a restart) starts
// the probe over, after its initial delay; a probe that killed the
// container waits for the next run.
func (a *Agent) loop(rt *podRuntime, pr *prober) {
	delay, period, timeout, successes, failures := probeTiming(pr.probe)
	if pr.kind == startup {
		successes = 1 // the API allows no other
	}
	run := pr.proc.run()
	var okRun, failRun int32
	ready, killed := false, false
	wait := delay
	for {
		// A readiness prober waiting for the startup probe runs as soon
		// as it passes, as the kubelet triggers a readiness run then,
		// rather than up to a period later.
		var gateOpened <-chan struct{}
		if pr.kind == readiness && !pr.started.open(run) {
			gateOpened = pr.started.wake()
		}
		select {
		case <-rt.done.Done():
			return
		case <-time.After(wait):
		case <-gateOpened:
		}
		wait = period
		if r := pr.proc.run(); r != run {
			run, okRun, failRun, ready, killed = r, 0, 0, false, false
			wait = delay
			continue
		}
		started := pr.started.open(run)
		if killed || (pr.kind == startup) == started {
			// Killed: the next run starts over. A startup probe is done
			// once the run started; the others wait for it.
			continue
		}
		ctx, cancel := context.WithTimeout(rt.done, timeout)
		err := pr.run(ctx)
		cancel()
		if rt.done.Err() != nil {
			return
		}
		if pr.proc.run() != run {
			continue // the result is of a run that has ended
		}
		if err == nil {
			okRun, failRun = okRun+1, 0
		} else {
			okRun, failRun = 0, failRun+1
		}
		switch pr.kind {
		case startup:
			if okRun >= successes {
				// Reported before the gate wakes the readiness prober,
				// whose result must come after it.
				a.setStarted(rt, pr.container)
				pr.started.pass(run)
			} else if failRun >= failures {
				a.cfg.Log.Warn("startup probe failed, killing the container", "pod", rt.key, "container", pr.container.Name, "err", err)
				pr.proc.kill()
				killed = true
			}
		case readiness:
			if !ready && okRun >= successes {
				ready = true
				a.setReady(rt, pr.container.Name, true)
			} else if ready && failRun >= failures {
				ready = false
				a.setReady(rt, pr.container.Name, false)
			}
		case liveness:
			if failRun >= failures {
				a.cfg.Log.Warn("liveness probe failed, killing the container", "pod", rt.key, "container", pr.container.Name, "err", err)
				pr.proc.kill()
				killed = true
			}
		}
	}
}

func (a *Agent) setReady(rt *podRuntime, container string, ready bool) {
	select {
	case <-rt.running:
	case <-rt.done.Done():
		return
	}
	a.reportContainer(rt, container, func(s *corev1.ContainerStatus) {
		if s.State.Running != nil {
			s.Ready = ready
		}
	})
}

// setStarted reports the container started once its startup probe passed,
// and ready with it when no readiness probe has to pass too; it leaves
// Ready to the readiness probe otherwise.
func (a *Agent) setStarted(rt *podRuntime, c *corev1.Container) {
	select {
	case <-rt.running:
	case <-rt.done.Done():
		return
	}
	a.reportContainer(rt, c.Name, func(s *corev1.ContainerStatus) {
		if s.State.Running != nil {
			started := true
			s.Started = &started
			if c.ReadinessProbe == nil {
				s.Ready = true // else the readiness probe says, once it ran
			}
		}
	})
}

// kill ends the container's current process (it is restarted as its
// policy says, unlike after stop).
func (p *process) kill() {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

// run probes once: nil is success.
func (pr *prober) run(ctx context.Context) error {
	h := pr.probe.ProbeHandler
	switch {
	case h.TCPSocket != nil:
		port, err := probePort(h.TCPSocket.Port, pr.container)
		if err != nil {
			return err
		}
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort(probeHost(h.TCPSocket.Host, pr.podIP), strconv.Itoa(port)))
		if err != nil {
			return err
		}
		return conn.Close()
	case h.HTTPGet != nil:
		return pr.httpGet(ctx, h.HTTPGet)
	case h.Exec != nil:
		return pr.exec(ctx, h.Exec.Command)
	}
	return fmt.Errorf("the local cluster runs tcpSocket, httpGet and exec probes only")
}

func (pr *prober) httpGet(ctx context.Context, g *corev1.HTTPGetAction) error {
	port, err := probePort(g.Port, pr.container)
	if err != nil {
		return err
	}
	scheme := "http"
	if g.Scheme == corev1.URISchemeHTTPS {
		scheme = "https"
	}
	url := scheme + "://" + net.JoinHostPort(probeHost(g.Host, pr.podIP), strconv.Itoa(port)) + g.Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	for _, h := range g.HTTPHeaders {
		req.Header.Add(h.Name, h.Value)
	}
	// The kubelet does not verify a probed pod's certificate.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("HTTP probe %s: status %d", url, resp.StatusCode)
	}
	return nil
}

// exec runs the command inside the container: its namespaces, root,
// working directory and environment.
func (pr *prober) exec(ctx context.Context, command []string) error {
	pr.proc.mu.Lock()
	cmd := pr.proc.cmd
	pr.proc.mu.Unlock()
	if cmd == nil || cmd.Process == nil || len(command) == 0 {
		return fmt.Errorf("exec probe: no process or no command")
	}
	args := append([]string{"--target", strconv.Itoa(cmd.Process.Pid), "--mount", "--net", "--uts", "--root", "--wd", "--"}, command...)
	probe := exec.CommandContext(ctx, "nsenter", args...)
	probe.Env = pr.env
	if out, err := probe.CombinedOutput(); err != nil {
		return fmt.Errorf("exec probe %q: %w: %s", command, err, out)
	}
	return nil
}

func probeHost(host, podIP string) string {
	if host != "" {
		return host
	}
	return podIP
}

// probePort resolves a probe's port, by number or by the name of one of
// the container's ports.
func probePort(port intstr.IntOrString, c *corev1.Container) (int, error) {
	if port.Type == intstr.Int {
		return port.IntValue(), nil
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return int(p.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("the container has no port named %q", port.StrVal)
}
