package kubeletapi_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	streamremote "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/netpolcheck/netpolcheck/cluster/local/controlplane/pki"
	"github.com/netpolcheck/netpolcheck/cluster/local/kubeletapi"
)

const apiServerUser = "kube-apiserver-kubelet-client"

// fakeRuntime runs "echo ARGS", "readline" (a line of stdin to stdout), "fail CODE" and
// "stderr TEXT" as commands, and serves one log file.
type fakeRuntime struct {
	logPath string
	done    chan struct{}
}

func (f *fakeRuntime) Exec(_ context.Context, ref kubeletapi.ContainerRef, cmd []string, s kubeletapi.Streams) error {
	if ref.Container != "main" {
		return kubeletapi.ErrNotFound
	}
	switch cmd[0] {
	case "echo":
		fmt.Fprintln(s.Stdout, strings.Join(cmd[1:], " "))
	case "readline":
		// One line: WebSocket protocols before v5 cannot close stdin.
		line, err := bufio.NewReader(s.Stdin).ReadString('\n')
		if err != nil {
			return err
		}
		_, err = io.WriteString(s.Stdout, line)
		return err
	case "stderr":
		fmt.Fprintln(s.Stderr, strings.Join(cmd[1:], " "))
	case "tty":
		size := <-s.Resize
		fmt.Fprintf(s.Stdout, "tty=%v %dx%d\n", s.TTY, size.Width, size.Height)
	case "fail":
		var code int
		fmt.Sscan(cmd[1], &code)
		return utilexec.CodeExitError{Err: errors.New("failed"), Code: code}
	}
	return nil
}

func (f *fakeRuntime) Attach(context.Context, kubeletapi.ContainerRef, kubeletapi.Streams) error {
	return errors.New("not attachable")
}

func (f *fakeRuntime) PortForward(context.Context, kubeletapi.ContainerRef, int32, io.ReadWriteCloser) error {
	return errors.New("no ports")
}

func (f *fakeRuntime) LogFile(_ kubeletapi.ContainerRef, previous bool) (kubeletapi.LogFile, error) {
	if previous {
		return kubeletapi.LogFile{}, kubeletapi.ErrNotFound
	}
	return kubeletapi.LogFile{Path: f.logPath, Done: f.done}, nil
}

type testServer struct {
	url     string
	ca      *pki.CA
	runtime *fakeRuntime
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	ca, err := pki.NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	serving, err := ca.Issue(pki.Request{CommonName: "node1", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Usage: pki.ServerAuth})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(serving.CertPEM, serving.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	rt := &fakeRuntime{logPath: filepath.Join(t.TempDir(), "0.log"), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := kubeletapi.Serve(ctx, kubeletapi.Config{
		Listen: "127.0.0.1:0", Certificate: cert, ClientCAs: pool,
		AllowedUsers: []string{apiServerUser}, Runtime: rt,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{url: "https://" + s.Addr(), ca: ca, runtime: rt}
}

// restConfig is a client of the server authenticating as user ("" for
// none).
func (s *testServer) restConfig(t *testing.T, user string) *rest.Config {
	t.Helper()
	cfg := &rest.Config{Host: s.url, TLSClientConfig: rest.TLSClientConfig{CAData: s.ca.CertPEM}}
	if user != "" {
		client, err := s.ca.Issue(pki.Request{CommonName: user, Usage: pki.ClientAuth})
		if err != nil {
			t.Fatal(err)
		}
		cfg.CertData, cfg.KeyData = client.CertPEM, client.KeyPEM
	}
	return cfg
}

func TestAuthentication(t *testing.T) {
	s := startServer(t)
	for _, tc := range []struct {
		user string
		want int
	}{
		{"", http.StatusUnauthorized},
		{"someone-else", http.StatusForbidden},
		{apiServerUser, http.StatusOK},
	} {
		cfg := s.restConfig(t, tc.user)
		transport, err := rest.TransportFor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := (&http.Client{Transport: transport}).Get(s.url + "/healthz")
		if err != nil {
			t.Fatalf("user %q: %v", tc.user, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("user %q: status %d, want %d", tc.user, resp.StatusCode, tc.want)
		}
	}
}

// executors are the client-go executors that reach a kubelet directly:
// SPDY (negotiating v4.channel.k8s.io) and WebSocket with the v4 protocol
// (v5 is translated to SPDY by the API server).
func executors(t *testing.T, cfg *rest.Config, u *url.URL) map[string]remotecommand.Executor {
	t.Helper()
	spdy, err := remotecommand.NewSPDYExecutor(cfg, "POST", u)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := remotecommand.NewWebSocketExecutorForProtocols(cfg, "GET", u.String(), streamremote.StreamProtocolV4Name)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]remotecommand.Executor{"spdy": spdy, "websocket-v4": ws}
}

func execURL(t *testing.T, base string, stdin, tty bool, cmd ...string) *url.URL {
	t.Helper()
	u, err := url.Parse(base + "/exec/default/pod1/main")
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"command": cmd, "output": {"1"}}
	if !tty {
		q.Set("error", "1")
	}
	if stdin {
		q.Set("input", "1")
	}
	if tty {
		q.Set("tty", "1")
	}
	u.RawQuery = q.Encode()
	return u
}

type fixedSize struct{ sent bool }

func (f *fixedSize) Next() *remotecommand.TerminalSize {
	if f.sent {
		return nil // one size only: nil ends the queue
	}
	f.sent = true
	return &remotecommand.TerminalSize{Width: 120, Height: 40}
}

func TestExec(t *testing.T) {
	s := startServer(t)
	cfg := s.restConfig(t, apiServerUser)
	for _, tc := range []struct {
		name           string
		cmd            []string
		stdin          string
		tty            bool
		stdout, stderr string
		exitCode       int
	}{
		{name: "stdout", cmd: []string{"echo", "hello", "world"}, stdout: "hello world\n"},
		{name: "stderr", cmd: []string{"stderr", "oops"}, stderr: "oops\n"},
		{name: "stdin", cmd: []string{"readline"}, stdin: "from stdin\n", stdout: "from stdin\n"},
		{name: "exit code", cmd: []string{"fail", "3"}, exitCode: 3},
		{name: "tty and resize", cmd: []string{"tty"}, tty: true, stdout: "tty=true 120x40\n"},
	} {
		for name, exec := range executors(t, cfg, execURL(t, s.url, tc.stdin != "", tc.tty, tc.cmd...)) {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				var stdout, stderr bytes.Buffer
				opts := remotecommand.StreamOptions{Stdout: &stdout, Tty: tc.tty}
				if !tc.tty {
					opts.Stderr = &stderr
				}
				if tc.stdin != "" {
					opts.Stdin = strings.NewReader(tc.stdin)
				}
				if tc.tty {
					opts.TerminalSizeQueue = &fixedSize{}
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				err := exec.StreamWithContext(ctx, opts)
				var exitErr utilexec.ExitError
				switch {
				case tc.exitCode != 0:
					if !errors.As(err, &exitErr) || exitErr.ExitStatus() != tc.exitCode {
						t.Fatalf("err = %v, want exit code %d", err, tc.exitCode)
					}
				case err != nil:
					t.Fatal(err)
				}
				if got := strings.ReplaceAll(stdout.String(), "\r\n", "\n"); got != tc.stdout {
					t.Errorf("stdout %q, want %q", got, tc.stdout)
				}
				if stderr.String() != tc.stderr {
					t.Errorf("stderr %q, want %q", stderr.String(), tc.stderr)
				}
			})
		}
	}
}

func TestLogs(t *testing.T) {
	s := startServer(t)
	cfg := s.restConfig(t, apiServerUser)
	transport, err := rest.TransportFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: transport}
	old := time.Now().Add(-time.Hour)
	var log []byte
	log = append(log, kubeletapi.FormatEntry(old, kubeletapi.StreamStdout, []byte("one"), false)...)
	log = append(log, kubeletapi.FormatEntry(old, kubeletapi.StreamStderr, []byte("two"), false)...)
	log = append(log, kubeletapi.FormatEntry(time.Now(), kubeletapi.StreamStdout, []byte("thr"), true)...)
	log = append(log, kubeletapi.FormatEntry(time.Now(), kubeletapi.StreamStdout, []byte("ee"), false)...)
	if err := os.WriteFile(s.runtime.logPath, log, 0o644); err != nil {
		t.Fatal(err)
	}
	get := func(query string) (int, string) {
		resp, err := client.Get(s.url + "/containerLogs/default/pod1/main?" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(body)
	}
	for _, tc := range []struct {
		query, want string
		status      int
	}{
		{"", "one\ntwo\nthree\n", 200},
		{"tailLines=2", "three\n", 200},
		{"tail=1", "ee\n", 200},
		{"tail=all", "one\ntwo\nthree\n", 200},
		{"sinceSeconds=60", "three\n", 200},
		{"limitBytes=6", "one\ntw", 200},
		{"previous=true", "", 404},
		{"tailLines=x", "", 400},
	} {
		status, body := get(tc.query)
		if status != tc.status || (status == 200 && body != tc.want) {
			t.Errorf("%q: %d %q, want %d %q", tc.query, status, body, tc.status, tc.want)
		}
	}

	// Following: entries written later arrive, and the stream ends once the
	// log is done.
	resp, err := client.Get(s.url + "/containerLogs/default/pod1/main?follow=true&tailLines=0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	f, err := os.OpenFile(s.runtime.logPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(kubeletapi.FormatEntry(time.Now(), kubeletapi.StreamStdout, []byte("four"), false)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	line := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, line); err != nil || string(line) != "four\n" {
		t.Fatalf("followed %q, %v", line, err)
	}
	close(s.runtime.done)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || len(rest) != 0 {
		t.Fatalf("after the end: %q, %v", rest, err)
	}
}
