package nodeagent

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

func TestAPIForward(t *testing.T) {
	// The "API server": echoes what it reads, until EOF.
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	go func() {
		for {
			conn, err := target.Accept()
			if err != nil {
				return
			}
			go func() { defer conn.Close(); _, _ = io.Copy(conn, conn) }()
		}
	}()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := free.Addr().String()
	free.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &APIForward{Listen: []string{listen}, Target: target.Addr().String(), Dial: (&net.Dialer{}).DialContext}
	if err := f.serve(ctx, func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", listen, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	// A half-close reaches the server, whose EOF ends the copy back.
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(conn)
	if err != nil || string(got) != "hello" {
		t.Fatalf("through the forwarder: %q, %v", got, err)
	}

	// After ctx ends, the forwarder no longer accepts.
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", listen, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the forwarder still accepts after its context ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
