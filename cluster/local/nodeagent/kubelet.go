package nodeagent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	utilexec "k8s.io/utils/exec"

	"github.com/netpolcheck/netpolcheck/cluster/local/kubeletapi"
	"github.com/netpolcheck/netpolcheck/cluster/local/netns"
	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/reference-cni/kubeclient"
)

// KubeletAPI configures the node's kubelet API (package kubeletapi), which
// the agent serves while it runs.
type KubeletAPI struct {
	// Listen is the address, NODE_IP:10250.
	Listen string
	// CertFile and KeyFile are the serving certificate, ClientCAFile the CA
	// of client certificates.
	CertFile, KeyFile, ClientCAFile string
	// AllowedUsers are the client certificate names allowed in.
	AllowedUsers []string
}

// execWaitDelay bounds how long an exec waits for its streams once the
// command exited (a client's stdin that never ends, for one).
const execWaitDelay = time.Second

func (a *Agent) serveKubeletAPI(ctx context.Context) error {
	k := a.cfg.KubeletAPI
	cert, err := tls.LoadX509KeyPair(k.CertFile, k.KeyFile)
	if err != nil {
		return fmt.Errorf("kubelet API serving certificate: %w", err)
	}
	caPEM, err := os.ReadFile(k.ClientCAFile)
	if err != nil {
		return fmt.Errorf("kubelet API client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("kubelet API client CA %s holds no certificate", k.ClientCAFile)
	}
	_, err = kubeletapi.Serve(ctx, kubeletapi.Config{
		Listen: k.Listen, Certificate: cert, ClientCAs: pool, AllowedUsers: k.AllowedUsers,
		Runtime: (*kubeletRuntime)(a), Log: a.cfg.Log,
	})
	return err
}

// kubeletRuntime is the agent as the kubelet API's runtime.
type kubeletRuntime Agent

// target is what a request reaches: the pod and, for a container, its
// process (nil for a container that runs nothing).
type target struct {
	rt   *podRuntime
	proc *process
}

func (k *kubeletRuntime) find(ref kubeletapi.ContainerRef, needContainer bool) (target, error) {
	a := (*Agent)(k)
	a.mu.Lock()
	rt := a.pods[podKey(ref.Namespace, ref.Pod)]
	a.mu.Unlock()
	if rt == nil || (ref.UID != "" && ref.UID != rt.uid) {
		return target{}, fmt.Errorf("pod %s/%s on node %s: %w", ref.Namespace, ref.Pod, a.cfg.NodeName, kubeletapi.ErrNotFound)
	}
	t := target{rt: rt}
	if !needContainer {
		return t, nil
	}
	for _, p := range rt.procs {
		if p.container == ref.Container {
			t.proc = p
			return t, nil
		}
	}
	if slices.Contains(rt.containers, ref.Container) {
		return t, nil
	}
	return target{}, fmt.Errorf("container %s: %w", ref, kubeletapi.ErrNotFound)
}

// pid is the container's process, 0 when it runs none.
func (t target) pid() int {
	if t.proc == nil {
		return 0
	}
	t.proc.mu.Lock()
	defer t.proc.mu.Unlock()
	if t.proc.cmd == nil || t.proc.cmd.Process == nil || t.proc.cmd.ProcessState != nil {
		return 0
	}
	return t.proc.cmd.Process.Pid
}

// execCommand runs cmd as the container would: through nsenter in the
// namespaces, root, working directory and environment of its process, or in
// the pod's network namespace for a container that runs nothing.
func (t target) execCommand(ctx context.Context, cmd []string) (*exec.Cmd, error) {
	var args []string
	var env []string
	if pid := t.pid(); pid != 0 {
		args = []string{"--target", strconv.Itoa(pid), "--mount", "--uts", "--ipc", "--net", "--root", "--wd"}
		environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			return nil, fmt.Errorf("reading the container's environment: %w", err)
		}
		env = strings.Split(strings.TrimRight(string(environ), "\x00"), "\x00")
	} else {
		if t.rt.netns != "" {
			args = []string{"--net=" + netns.Path(t.rt.netns)}
		}
		env = os.Environ()
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return nil, fmt.Errorf("exec needs nsenter (util-linux): %w", err)
	}
	c := exec.CommandContext(ctx, nsenter, append(append(args, "--"), cmd...)...)
	c.Env = env
	c.WaitDelay = execWaitDelay
	return c, nil
}

func (k *kubeletRuntime) Exec(ctx context.Context, ref kubeletapi.ContainerRef, cmd []string, s kubeletapi.Streams) error {
	t, err := k.find(ref, true)
	if err != nil {
		return err
	}
	c, err := t.execCommand(ctx, cmd)
	if err != nil {
		return err
	}
	if s.TTY {
		err = runOnTTY(c, s)
	} else {
		err = runWithStreams(c, s)
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) && exitErr.Exited() {
		return utilexec.CodeExitError{Err: err, Code: exitErr.ExitCode()}
	}
	return err
}

// runWithStreams runs c with the session's streams. Stdin is copied by a
// goroutine of its own that the session does not wait for: a client may keep
// its stdin open after the command exited (WebSocket protocols before v5
// cannot close it), and the read returns only when the session ends.
func runWithStreams(c *exec.Cmd, s kubeletapi.Streams) error {
	var stdin io.WriteCloser
	if s.Stdin != nil {
		var err error
		if stdin, err = c.StdinPipe(); err != nil {
			return err
		}
	}
	if s.Stdout != nil {
		c.Stdout = s.Stdout
	}
	if s.Stderr != nil {
		c.Stderr = s.Stderr
	}
	if err := c.Start(); err != nil {
		return err
	}
	if stdin != nil {
		go func() {
			_, _ = io.Copy(stdin, s.Stdin)
			stdin.Close() // EOF for the command; Wait closes it too
		}()
	}
	return c.Wait()
}

// firstSizeWait bounds how long a command on a terminal waits for the
// client's terminal size before it starts.
const firstSizeWait = 500 * time.Millisecond

// runOnTTY runs c on a new pseudo-terminal that follows the client's size.
// The command starts once the client's first size is there (clients send it
// at once), so that it sees its terminal's real size from the start.
func runOnTTY(c *exec.Cmd, s kubeletapi.Streams) error {
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	var size *pty.Winsize
	select {
	case first, ok := <-s.Resize:
		if ok {
			size = &pty.Winsize{Rows: first.Height, Cols: first.Width}
		}
	case <-time.After(firstSizeWait):
	}
	terminal, err := pty.StartWithSize(c, size)
	if err != nil {
		return fmt.Errorf("starting on a terminal: %w", err)
	}
	defer terminal.Close()
	go func() {
		for size := range s.Resize {
			_ = pty.Setsize(terminal, &pty.Winsize{Rows: size.Height, Cols: size.Width})
		}
	}()
	if s.Stdin != nil {
		go func() { _, _ = io.Copy(terminal, s.Stdin) }()
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		if s.Stdout != nil {
			// Ends with EIO once the command and its children closed the
			// terminal.
			_, _ = io.Copy(s.Stdout, terminal)
		}
	}()
	err = c.Wait()
	select {
	case <-copied:
	case <-time.After(execWaitDelay):
	}
	return err
}

func (k *kubeletRuntime) Attach(ctx context.Context, ref kubeletapi.ContainerRef, s kubeletapi.Streams) error {
	t, err := k.find(ref, true)
	if err != nil {
		return err
	}
	if t.proc == nil {
		return fmt.Errorf("container %s runs no process to attach to", ref)
	}
	p := t.proc
	p.mu.Lock()
	log, exited, stdin := p.log, p.exited, p.stdin
	p.mu.Unlock()
	if log == nil {
		return fmt.Errorf("container %s has not started", ref)
	}
	a := &attachment{stdout: s.Stdout, stderr: s.Stderr}
	if s.TTY {
		a.stderr = s.Stdout // one terminal stream
	}
	detach := log.attach(a)
	defer detach()
	if s.Stdin != nil && stdin != nil {
		go func() {
			_, _ = io.Copy(stdin, s.Stdin)
			if p.stdinOnce {
				p.closeStdin()
			}
		}()
	}
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return nil // the client went away
	}
}

// closeStdin closes the container's stdin: its process reads EOF.
func (p *process) closeStdin() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stdin != nil {
		p.stdin.Close()
		p.stdin = nil
	}
}

func (k *kubeletRuntime) PortForward(ctx context.Context, ref kubeletapi.ContainerRef, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	t, err := k.find(ref, false)
	if err != nil {
		return err
	}
	dial := (&net.Dialer{}).DialContext
	if t.rt.netns != "" {
		dial = kubeclient.NetnsDialer(netns.Path(t.rt.netns))
	}
	// The kubelet's runtimes connect to localhost inside the pod.
	conn, err := dial(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
	if err != nil {
		return fmt.Errorf("port-forward to %s/%s port %d: %w", ref.Namespace, ref.Pod, port, err)
	}
	defer conn.Close()
	var wg sync.WaitGroup
	wg.Go(func() {
		_, _ = io.Copy(conn, stream)
		if tcp, ok := conn.(*net.TCPConn); ok {
			_ = tcp.CloseWrite()
		}
	})
	_, _ = io.Copy(stream, conn)
	stream.Close()
	wg.Wait()
	return nil
}

func (k *kubeletRuntime) LogFile(ref kubeletapi.ContainerRef, previous bool) (kubeletapi.LogFile, error) {
	t, err := k.find(ref, true)
	if err != nil && !previous {
		if path, ok := k.initContainerLog(ref); ok {
			done := make(chan struct{})
			close(done)
			return kubeletapi.LogFile{Path: path, Done: done}, nil
		}
	}
	if err != nil {
		return kubeletapi.LogFile{}, err
	}
	if t.proc == nil {
		return kubeletapi.LogFile{}, fmt.Errorf("container %s runs no process and has no log", ref)
	}
	p := t.proc
	p.mu.Lock()
	restarts, current, exited, log := p.restarts, p.logPath, p.exited, p.log
	p.mu.Unlock()
	if !previous {
		if log != nil {
			log.logRead()
		}
		return kubeletapi.LogFile{Path: current, Done: exited}, nil
	}
	if restarts == 0 {
		return kubeletapi.LogFile{}, fmt.Errorf("previous terminated container %q in pod %q not found", ref.Container, ref.Pod)
	}
	done := make(chan struct{})
	close(done)
	return kubeletapi.LogFile{Path: logPath(p.logDir, restarts-1), Done: done}, nil
}

// initContainerLog returns the log of one of the pod's init containers
// (not a sidecar), which ran to completion before the pod's containers
// started (see runInitContainers).
func (k *kubeletRuntime) initContainerLog(ref kubeletapi.ContainerRef) (string, bool) {
	t, err := k.find(ref, false)
	if err != nil || t.rt.pod == nil {
		return "", false
	}
	for i := range t.rt.pod.Spec.InitContainers {
		if c := &t.rt.pod.Spec.InitContainers[i]; c.Name == ref.Container && !matrix.IsSidecar(c) {
			path := logPath(filepath.Join(k.cfg.LogDir, filepath.Base(t.rt.dir), c.Name), 0)
			_, err := os.Stat(path)
			return path, err == nil
		}
	}
	return "", false
}
