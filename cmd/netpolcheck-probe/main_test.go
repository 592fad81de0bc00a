package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/probes/server"
)

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"frobnicate"},
		{"serve"},
		{"serve", "--identity", "x/a"},
		{"serve", "--identity", "x/a", "--port", "80/ICMP"},
		{"connect"},
		{"connect", "--host", "127.0.0.1", "extra"},
		{"batch", "--workers", "many"},
		{"idle", "--port", "80"},
		{"ready"},
		{"ready", "--port", "80/ICMP"},
	} {
		var stderr bytes.Buffer
		err := run(context.Background(), args, strings.NewReader(""), &bytes.Buffer{}, &stderr)
		if !errors.Is(err, errUsage) {
			t.Errorf("run(%q) = %v, want a usage error", args, err)
		}
	}
}

func TestIdleWaitsForTheSignal(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"idle"}, strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{}) }()
	select {
	case err := <-done:
		t.Fatalf("idle returned before the signal: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("idle: %v", err)
	}
}

// closedLoopbackPort returns a TCP port on 127.0.0.1 that nothing listens on.
func closedLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func TestConnectPrintsOneResult(t *testing.T) {
	port := closedLoopbackPort(t)
	var stdout bytes.Buffer
	err := run(context.Background(), []string{"connect", "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--protocol", "tcp", "--timeout", "500ms"},
		strings.NewReader(""), &stdout, &bytes.Buffer{})
	if err != nil {
		t.Fatalf("connect failed although the probe ran: %v", err)
	}
	var r matrix.Result
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("output %q: %v", stdout.String(), err)
	}
	if r.Outcome != matrix.Refused || strings.Count(stdout.String(), "\n") != 1 {
		t.Errorf("output %q, want one refused result", stdout.String())
	}
}

func TestBatchReadsProbesAndWritesResults(t *testing.T) {
	port := closedLoopbackPort(t)
	in, _ := json.Marshal([]matrix.Probe{
		{ID: 1, Host: "127.0.0.1", Port: int32(port), Protocol: "TCP", TimeoutMillis: 500},
		{ID: 2, Host: "127.0.0.1", Port: int32(port), Protocol: "UDP", TimeoutMillis: 500},
	})
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"batch", "--workers", "2"}, bytes.NewReader(in), &stdout, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("output %q, want 2 lines", stdout.String())
	}
	for _, line := range lines {
		var r matrix.Result
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.Outcome != matrix.Refused {
			t.Errorf("line %q: %+v, %v; want refused", line, r, err)
		}
	}
}

func TestReadyWaitsForEveryPort(t *testing.T) {
	port := closedLoopbackPort(t)
	spec := strconv.Itoa(port) + "/TCP,UDP"
	readyArgs := []string{"ready", "--port", spec, "--timeout", "300ms"}
	err := run(context.Background(), readyArgs, strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "2 of 2 ports do not answer") || !strings.Contains(err.Error(), strconv.Itoa(port)+"/UDP: refused") {
		t.Fatalf("ready before the server listens: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	listening := make(chan struct{})
	ports, err := server.ParsePortSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		served <- server.Serve(ctx, server.Config{Identity: "x/a", Ports: ports}, func() { close(listening) })
	}()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	select {
	case <-listening:
	case err := <-served:
		t.Fatalf("serve: %v", err)
	}
	var stdout bytes.Buffer
	if err := run(context.Background(), readyArgs, strings.NewReader(""), &stdout, &bytes.Buffer{}); err != nil || stdout.String() != "ready\n" {
		t.Errorf("ready while the server listens: %v, output %q", err, stdout.String())
	}
}
