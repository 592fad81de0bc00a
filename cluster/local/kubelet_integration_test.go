package local_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/streaming/pkg/httpstream"
	utilexec "k8s.io/utils/exec"

	"github.com/netpolcheck/netpolcheck/cluster/local"
	"github.com/netpolcheck/netpolcheck/cluster/local/controlplane"
	"github.com/netpolcheck/netpolcheck/cluster/local/netns"
	"github.com/netpolcheck/netpolcheck/cluster/local/topology"
	inetns "github.com/netpolcheck/netpolcheck/internal/netns"
	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/probes/transport"
	"github.com/netpolcheck/netpolcheck/reference-cni/kubeclient"
)

// kubectlRun runs kubectl against the cluster and returns stdout, stderr
// and its exit code.
type kubectlRunner struct {
	path, kubeconfig string
}

func (k kubectlRunner) cmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, k.path, append([]string{"--kubeconfig", k.kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECTL_REMOTE_COMMAND_WEBSOCKETS=true", "KUBECTL_PORT_FORWARD_WEBSOCKETS=true")
	return cmd
}

func (k kubectlRunner) run(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := k.cmd(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

// egressConnects counts the connections the egress proxy opened.
func egressConnects(t *testing.T, c *local.Cluster) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(c.StateDir, "egress-proxy.log"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(data), "msg=CONNECT ")
}

// TestKubeletAPI brings up a cluster whose node names resolve nowhere
// (node1.invalid, node2.invalid) and uses every kubelet API the API server
// proxies to, with kubectl and client-go, all through the egress proxy.
func TestKubeletAPI(t *testing.T) {
	name := fmt.Sprintf("k%d", os.Getpid())
	c, client := startCluster(t, name, 2, func(o *local.Options) { o.NodeDomain = "invalid" })
	ctx := context.Background()
	kubectlPath, err := controlplane.EnsureKubectl(ctx, localKube())
	if err != nil {
		t.Fatal(err)
	}
	kubectl := kubectlRunner{path: kubectlPath, kubeconfig: c.Kubeconfig}
	node1 := c.Nodes[0]
	if node1.Name != "node1.invalid" {
		t.Fatalf("node name %q", node1.Name)
	}
	if addrs, err := net.LookupHost(node1.Name); err == nil {
		t.Fatalf("%s resolves to %v", node1.Name, addrs)
	}

	ns := "kubelet-api"
	noErr(t)(client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}))
	noErr(t)(client.CoreV1().Pods(ns).Create(ctx, probePod(ns, "a", node1.Name), metav1.CreateOptions{}))
	noErr(t)(client.CoreV1().Pods(ns).Create(ctx, probePod(ns, "b", c.Nodes[1].Name), metav1.CreateOptions{}))
	pods := waitRunning(t, client, ns, 2)
	a := pods["a"]
	before := egressConnects(t, c)

	t.Run("exec", func(t *testing.T) {
		stdout, stderr, code := kubectl.run(t, "", "exec", "-n", ns, "a", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
		if stdout != "out\n" || !strings.Contains(stderr, "err\n") || code != 3 {
			t.Errorf("stdout %q, stderr %q, exit code %d; want out, err, 3", stdout, stderr, code)
		}
		stdout, _, code = kubectl.run(t, "line one\nline two\n", "exec", "-i", "-n", ns, "a", "--", "cat")
		if stdout != "line one\nline two\n" || code != 0 {
			t.Errorf("stdin: stdout %q, exit code %d", stdout, code)
		}
		// The command runs in the container's network and mount namespaces,
		// with the container process's environment.
		kubernetesSvc, err := client.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		stdout, _, _ = kubectl.run(t, "", "exec", "-n", ns, "a", "--", "sh", "-c", "ip -o -4 addr show dev eth0; echo svc=$KUBERNETES_SERVICE_HOST; grep nameserver /etc/resolv.conf")
		if !strings.Contains(stdout, " "+a.Status.PodIP+"/") || !strings.Contains(stdout, "svc="+kubernetesSvc.Spec.ClusterIP+"\n") ||
			!strings.Contains(stdout, "nameserver "+local.ClusterDNSIP) {
			t.Errorf("exec does not run in the pod: %q", stdout)
		}
	})

	t.Run("client-go executors", func(t *testing.T) {
		cfg, err := c.RESTConfig()
		if err != nil {
			t.Fatal(err)
		}
		execURL := func(tty bool, cmd ...string) string {
			return client.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name("a").SubResource("exec").
				VersionedParams(&corev1.PodExecOptions{Command: cmd, Stdin: true, Stdout: true, Stderr: !tty, TTY: tty}, scheme.ParameterCodec).
				URL().String()
		}
		for _, tc := range []struct {
			name string
			new  func(u string) (remotecommand.Executor, error)
		}{
			{"spdy", func(u string) (remotecommand.Executor, error) { return newSPDY(cfg, u) }},
			{"websocket", func(u string) (remotecommand.Executor, error) {
				return remotecommand.NewWebSocketExecutor(cfg, "GET", u)
			}},
			// The protocol before v5, which the API server passes to the
			// kubelet as it is.
			{"websocket-v4", func(u string) (remotecommand.Executor, error) {
				return remotecommand.NewWebSocketExecutorForProtocols(cfg, "GET", u, "v4.channel.k8s.io")
			}},
			{"fallback", func(u string) (remotecommand.Executor, error) {
				ws, err := remotecommand.NewWebSocketExecutor(cfg, "GET", u)
				if err != nil {
					return nil, err
				}
				spdy, err := newSPDY(cfg, u)
				if err != nil {
					return nil, err
				}
				// kubectl's rule: SPDY when the WebSocket upgrade fails.
				return remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
					return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
				})
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				// One line of stdin: before v5 a client cannot close it.
				exec, err := tc.new(execURL(false, "sh", "-c", "head -n1; echo err >&2; exit 7"))
				if err != nil {
					t.Fatal(err)
				}
				var stdout, stderr bytes.Buffer
				err = exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: strings.NewReader("in\n"), Stdout: &stdout, Stderr: &stderr})
				var exitErr utilexec.ExitError
				if !errors.As(err, &exitErr) || exitErr.ExitStatus() != 7 || stdout.String() != "in\n" || stderr.String() != "err\n" {
					t.Errorf("err %v, stdout %q, stderr %q; want exit code 7, in, err", err, stdout.String(), stderr.String())
				}
				// A terminal of the client's size.
				exec, err = tc.new(execURL(true, "sh", "-c", "tty; stty size"))
				if err != nil {
					t.Fatal(err)
				}
				stdout.Reset()
				stdinR, stdinW := io.Pipe()
				defer stdinW.Close()
				err = exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdinR, Stdout: &stdout, Tty: true, TerminalSizeQueue: &oneSize{}})
				if err != nil || !regexp.MustCompile(`/dev/pts/\d+\r?\n40 120`).MatchString(stdout.String()) {
					t.Errorf("tty: err %v, output %q", err, stdout.String())
				}
			})
		}
	})

	t.Run("probe transport", func(t *testing.T) {
		cfg, err := c.RESTConfig()
		if err != nil {
			t.Fatal(err)
		}
		tr := transport.NewKubeExec(cfg, client, "serve-80-tcp", transport.WithBinary(filepath.Join(c.BinDir, local.ProbeBinary)))
		b := pods["b"]
		results, err := tr.RunBatch(ctx, matrix.Endpoint{Name: ns + "/a", Namespace: ns, Pod: "a"}, []matrix.Probe{
			{ID: 1, Host: b.Status.PodIP, Port: 80, Protocol: corev1.ProtocolTCP, Expect: ns + "/b", TimeoutMillis: 1000},
			{ID: 2, Host: b.Status.PodIP, Port: 81, Protocol: corev1.ProtocolTCP, TimeoutMillis: 1000},
		})
		if err != nil {
			t.Fatal(err)
		}
		outcomes := map[int]matrix.Outcome{}
		for _, r := range results {
			outcomes[r.ID] = r.Outcome
		}
		if len(results) != 2 || outcomes[1] != matrix.Connected || outcomes[2] != matrix.Refused {
			t.Errorf("results %+v; want connected, refused", results)
		}
	})

	t.Run("logs", func(t *testing.T) {
		stdout, stderr, code := kubectl.run(t, "", "logs", "-n", ns, "a")
		if code != 0 || !strings.Contains(stdout, "ready\n") {
			t.Fatalf("logs: %q %q %d", stdout, stderr, code)
		}
		if out, _, _ := kubectl.run(t, "", "logs", "-n", ns, "a", "--tail=1"); strings.Count(out, "\n") != 1 {
			t.Errorf("--tail=1: %q", out)
		}
		if out, _, _ := kubectl.run(t, "", "logs", "-n", ns, "a", "--since=1h"); out != stdout {
			t.Errorf("--since=1h: %q, want %q", out, stdout)
		}
		if out, _, _ := kubectl.run(t, "", "logs", "-n", ns, "a", "--since-time="+time.Now().Add(time.Minute).UTC().Format(time.RFC3339)); out != "" {
			t.Errorf("--since-time in the future: %q", out)
		}
		if _, stderr, code := kubectl.run(t, "", "logs", "-n", ns, "a", "--previous"); code == 0 || !strings.Contains(stderr, "previous terminated container") {
			t.Errorf("--previous before a restart: exit code %d, %q", code, stderr)
		}
		// Following: the log so far, then the stream ends when the
		// container's run ends; the next run's log is then the current one
		// and this one the previous.
		follow := kubectl.cmd(ctx, "logs", "-f", "-n", ns, "a")
		out, err := follow.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := follow.Start(); err != nil {
			t.Fatal(err)
		}
		defer follow.Process.Kill()
		// The server's "ready" (stdout) and its log lines (stderr) come
		// in either order.
		lines := bufio.NewScanner(out)
		for lines.Scan() && lines.Text() != "ready" {
		}
		if lines.Text() != "ready" {
			t.Fatalf("logs -f ended without the ready line: %v", lines.Err())
		}
		killContainer(t, c, a)
		rest, _ := io.ReadAll(out)
		if err := follow.Wait(); err != nil {
			t.Errorf("logs -f after the container exited: %v (%q)", err, rest)
		}
		waitFor(t, 10*time.Second, "the restarted container's log", func() bool {
			out, _, code := kubectl.run(t, "", "logs", "-n", ns, "a", "--previous")
			return code == 0 && strings.Contains(out, "ready\n")
		})
	})

	t.Run("port-forward", func(t *testing.T) {
		pfCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		pf := kubectl.cmd(pfCtx, "port-forward", "-n", ns, "pod/b", ":80")
		out, err := pf.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := pf.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); _ = pf.Wait() }()
		lines := bufio.NewScanner(out)
		var port string
		for lines.Scan() {
			if m := regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> 80`).FindStringSubmatch(lines.Text()); m != nil {
				port = m[1]
				break
			}
		}
		if port == "" {
			t.Fatal("kubectl port-forward said nowhere it listens")
		}
		go func() { _, _ = io.Copy(io.Discard, out) }()
		probeOut, err := exec.Command(filepath.Join(c.BinDir, local.ProbeBinary), "connect", "--host", "127.0.0.1", "--port", port, "--expect", ns+"/b", "--timeout", "5s").Output()
		if err != nil {
			t.Fatal(err)
		}
		var result matrix.Result
		if err := json.Unmarshal(probeOut, &result); err != nil || result.Outcome != matrix.Connected {
			t.Errorf("through port-forward: %s (%v)", probeOut, err)
		}
	})

	t.Run("run -i --rm", func(t *testing.T) {
		// The local cluster runs the probe image's command with the local
		// binary; "batch" reads probes from stdin, so attach carries them.
		input, err := json.Marshal([]matrix.Probe{{ID: 1, Host: pods["b"].Status.PodIP, Port: 80, Protocol: corev1.ProtocolTCP, Expect: ns + "/b", TimeoutMillis: 2000}})
		if err != nil {
			t.Fatal(err)
		}
		stdout, stderr, code := kubectl.run(t, string(input)+"\n", "run", "-n", ns, "attached", "-i", "--rm", "--quiet",
			"--image=ghcr.io/netpolcheck/netpolcheck:dev", "--overrides", `{"spec":{"nodeName":"`+node1.Name+`"}}`,
			"--command", "--", "/"+local.ProbeBinary, "batch")
		var result matrix.Result
		if code != 0 || json.Unmarshal([]byte(strings.TrimSpace(stdout)), &result) != nil || result.Outcome != matrix.Connected {
			t.Errorf("kubectl run -i --rm: exit code %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		waitFor(t, 30*time.Second, "the attached pod deleted", func() bool {
			_, err := client.CoreV1().Pods(ns).Get(ctx, "attached", metav1.GetOptions{})
			return err != nil
		})
	})

	t.Run("run -i --rm busybox", func(t *testing.T) {
		// Debian's busybox runs the busybox image: its wget fetches from an
		// agnhost netexec pod's HTTP server on the other node, and its nc
		// tells pod b's open port from a closed one; pod IPs only.
		web := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
			Spec: corev1.PodSpec{NodeName: c.Nodes[1].Name, Containers: []corev1.Container{{
				Name: "netexec", Image: "registry.k8s.io/e2e-test-images/agnhost:2.53", Args: []string{"netexec", "--http-port=8080"},
				Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
			}}},
		}
		noErr(t)(client.CoreV1().Pods(ns).Create(ctx, web, metav1.CreateOptions{}))
		var webIP string
		waitFor(t, 30*time.Second, "pod web ready", func() bool {
			p, err := client.CoreV1().Pods(ns).Get(ctx, "web", metav1.GetOptions{})
			if err != nil || p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) == 0 || !p.Status.ContainerStatuses[0].Ready {
				return false
			}
			webIP = p.Status.PodIP
			return true
		})
		busybox := func(name string, args ...string) (string, string, int) {
			return kubectl.run(t, "", append([]string{"run", "-n", ns, name, "-i", "--rm", "--quiet", "--restart=Never",
				"--image=busybox", "--overrides", `{"spec":{"nodeName":"` + node1.Name + `"}}`, "--"}, args...)...)
		}
		url := "http://" + net.JoinHostPort(webIP, "8080") + "/hostname"
		waitFor(t, 20*time.Second, "netexec answering", func() bool {
			_, _, code := kubectl.run(t, "", "exec", "-n", ns, "a", "--", "bash", "-c", "exec 3<>/dev/tcp/"+webIP+"/8080")
			return code == 0
		})
		if stdout, stderr, code := busybox("wget", "wget", "-qO-", url); code != 0 || strings.TrimSpace(stdout) != "web" {
			t.Errorf("busybox wget -qO- %s: exit code %d, stdout %q, stderr %q; want web", url, code, stdout, stderr)
		}
		// Debian builds busybox's nc without -z: a connect that stdin ends
		// at once is its port check (exit 0 once the server closes).
		bIP := pods["b"].Status.PodIP
		for port, open := range map[string]bool{"80": true, "81": false} {
			check := "nc -w 2 " + bIP + " " + port + " </dev/null"
			stdout, stderr, code := busybox("nc-"+port, "sh", "-c", check)
			if (code == 0) != open {
				t.Errorf("busybox %s (open %v): exit code %d, stdout %q, stderr %q", check, open, code, stdout, stderr)
			}
		}
		if stdout, stderr, code := busybox("ping", "ping", "-c", "1", "-W", "2", bIP); code != 0 {
			t.Errorf("busybox ping -c 1 %s: exit code %d, stdout %q, stderr %q", bIP, code, stdout, stderr)
		}
		// The shell is busybox's ($$$$: the kubelet makes $$ of it).
		if stdout, stderr, code := busybox("sh", "sh", "-c", "readlink /proc/$$$$/exe; readlink /bin/wget"); code != 0 || stdout != "/usr/bin/busybox\n/usr/bin/busybox\n" {
			t.Errorf("busybox sh: exit code %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})

	t.Run("configMap update reaches the container", func(t *testing.T) {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: ns}, Data: map[string]string{"mode": "one"}}
		noErr(t)(client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}))
		reader := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "reader", Namespace: ns},
			Spec: corev1.PodSpec{NodeName: node1.Name, Containers: []corev1.Container{{
				Name: "sh", Image: "busybox", Command: []string{"sleep", "3600"},
				VolumeMounts: []corev1.VolumeMount{{Name: "settings", MountPath: "/etc/settings"}},
			}}, Volumes: []corev1.Volume{{Name: "settings", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}}}},
		}
		noErr(t)(client.CoreV1().Pods(ns).Create(ctx, reader, metav1.CreateOptions{}))
		read := func() string {
			stdout, _, _ := kubectl.run(t, "", "exec", "-n", ns, "reader", "--", "cat", "/etc/settings/mode")
			return stdout
		}
		waitFor(t, 30*time.Second, "the reader sees mode one", func() bool { return read() == "one" })
		cm.Data["mode"] = "two"
		noErr(t)(client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}))
		updated := time.Now()
		waitFor(t, 10*time.Second, "the update in the container", func() bool { return read() == "two" })
		t.Logf("the update reached the container in %s", time.Since(updated).Round(100*time.Millisecond))
	})

	t.Run("egress only through the proxy", func(t *testing.T) {
		after := egressConnects(t, c)
		if after <= before {
			t.Errorf("the egress proxy opened %d connections before the kubelet API calls and %d after", before, after)
		}
		if _, _, code := kubectl.run(t, "", "exec", "-n", ns, "a", "--", "true"); code != 0 {
			t.Errorf("exec: exit code %d", code)
		}
		if again := egressConnects(t, c); again <= after {
			t.Errorf("an exec did not go through the egress proxy (%d connections before, %d after)", after, again)
		}
		// This machine's namespace has no route of the project to the
		// nodes (only its own default route, which leads off the machine),
		// and no process in it holds a TCP connection to a node: the API
		// server's all go through the proxy's Unix socket.
		routes, err := netlink.RouteGet(net.IP(node1.IP.AsSlice()))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range routes {
			link, err := netlink.LinkByIndex(r.LinkIndex)
			if err == nil && strings.HasPrefix(link.Attrs().Name, "npc") {
				t.Errorf("this machine's namespace routes %s through the project's link %s", node1.IP, link.Attrs().Name)
			}
		}
		out, err := exec.Command("ss", "-Htnp", "dst", topology.UnderlayRange).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("TCP connections from this machine's namespace to the nodes: %s %v", out, err)
		}
		// Inside the node, a request without a client certificate is refused.
		httpClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			DialContext:     kubeclient.NetnsDialer(netns.Path(node1.Netns)),
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		}}
		resp, err := httpClient.Get("https://" + net.JoinHostPort(node1.IP.String(), "10250") + "/exec/" + ns + "/a/serve-80-tcp?command=true&output=1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("anonymous request: %s, want 401", resp.Status)
		}
	})
}

func newSPDY(cfg *rest.Config, u string) (remotecommand.Executor, error) {
	parsed, err := url.Parse(u)
	if err != nil {
		return nil, err
	}
	return remotecommand.NewSPDYExecutor(cfg, "POST", parsed)
}

// oneSize is a terminal of 120x40.
type oneSize struct{ sent bool }

func (o *oneSize) Next() *remotecommand.TerminalSize {
	if o.sent {
		return nil
	}
	o.sent = true
	return &remotecommand.TerminalSize{Width: 120, Height: 40}
}

// killContainer kills the process of the pod's container, as a crash would.
func killContainer(t *testing.T, c *local.Cluster, pod corev1.Pod) {
	t.Helper()
	pids, err := inetns.Pids(podNetns(t, c, pod))
	if err != nil || len(pids) == 0 {
		t.Fatalf("the processes of pod %s: %v %v", pod.Name, pids, err)
	}
	for _, pid := range pids {
		if p, err := os.FindProcess(pid); err == nil {
			_ = p.Kill()
		}
	}
}
