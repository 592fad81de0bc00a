package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netpolcheck/netpolcheck/matrix"
)

func TestRunRunsProbesConcurrently(t *testing.T) {
	probes := make([]matrix.Probe, 100)
	for i := range probes {
		probes[i] = matrix.Probe{ID: i, Host: "10.99.0.1", Port: 80, Protocol: "TCP", TimeoutMillis: 200}
	}
	in, _ := json.Marshal(probes)
	var running, peak atomic.Int32
	slow := func(ctx context.Context, p matrix.Probe) matrix.Result {
		trackPeak(&running, &peak)
		time.Sleep(p.Timeout())
		running.Add(-1)
		return matrix.Result{ID: p.ID, Outcome: matrix.Timeout}
	}
	var out bytes.Buffer
	start := time.Now()
	if err := Run(context.Background(), bytes.NewReader(in), &out, slow, 0); err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("100 probes of 200 ms took %v; they did not run concurrently", elapsed)
	}
	if peak.Load() != 100 {
		t.Errorf("peak concurrency %d, want all 100 at once", peak.Load())
	}
	if lines := strings.Count(out.String(), "\n"); lines != 100 {
		t.Errorf("%d result lines, want 100", lines)
	}
}

func TestRunBoundsWorkers(t *testing.T) {
	probes := make([]matrix.Probe, 20)
	for i := range probes {
		probes[i] = matrix.Probe{ID: i, TimeoutMillis: 1}
	}
	in, _ := json.Marshal(probes)
	var running, peak atomic.Int32
	f := func(ctx context.Context, p matrix.Probe) matrix.Result {
		trackPeak(&running, &peak)
		time.Sleep(5 * time.Millisecond)
		running.Add(-1)
		return matrix.Result{ID: p.ID}
	}
	if err := Run(context.Background(), bytes.NewReader(in), io.Discard, f, 3); err != nil {
		t.Fatal(err)
	}
	if peak.Load() > 3 {
		t.Errorf("peak concurrency %d with 3 workers", peak.Load())
	}
}

// trackPeak counts one more running probe and records the highest count.
func trackPeak(running, peak *atomic.Int32) {
	n := running.Add(1)
	for {
		old := peak.Load()
		if n <= old || peak.CompareAndSwap(old, n) {
			return
		}
	}
}

func TestRunRejectsBadInput(t *testing.T) {
	err := Run(context.Background(), strings.NewReader(`{"id":1}`), io.Discard, nil, 1)
	if err == nil {
		t.Fatal("Run accepted an object instead of an array")
	}
}

// agent returns a Streams that runs Run in-process with a fake probe.
func agent(probe ProbeFunc) Streams {
	return func(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) error {
		return Run(ctx, stdin, stdout, probe, 0)
	}
}

func TestExchangeRoundTrip(t *testing.T) {
	probes := []matrix.Probe{
		{ID: 1, Host: "10.99.1.2", Port: 80, Protocol: "TCP", Expect: "x/a", TimeoutMillis: 1000},
		{ID: 2, Host: "10.99.1.2", Port: 81, Protocol: "UDP", Expect: "x/a", TimeoutMillis: 1000},
	}
	results, err := Exchange(context.Background(), probes, agent(func(ctx context.Context, p matrix.Probe) matrix.Result {
		return matrix.Result{ID: p.ID, Outcome: matrix.Connected, Peer: p.Expect + "/serve"}
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 {
		t.Fatalf("results = %+v", results)
	}
	for _, r := range results {
		if r.Outcome != matrix.Connected || r.Peer != "x/a/serve" {
			t.Errorf("result %+v", r)
		}
	}
}

func TestExchangeFillsMissingResults(t *testing.T) {
	probes := []matrix.Probe{{ID: 1}, {ID: 2}, {ID: 3}}
	crashing := func(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) error {
		io.WriteString(stdout, `{"id":1,"outcome":"connected","latencyUs":5}`+"\n")
		io.WriteString(stdout, `{"id":1,"outcome":"timeout","latencyUs":5}`+"\n")  // duplicate: ignored
		io.WriteString(stdout, `{"id":99,"outcome":"timeout","latencyUs":5}`+"\n") // unknown: ignored
		io.WriteString(stdout, "garbage\n")
		io.WriteString(stderr, "panic: boom")
		return errors.New("exit status 2")
	}
	results, err := Exchange(context.Background(), probes, crashing)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[int]matrix.Result{}
	for _, r := range results {
		byID[r.ID] = r
	}
	if len(results) != 3 || byID[1].Outcome != matrix.Connected {
		t.Fatalf("results = %+v", results)
	}
	for _, id := range []int{2, 3} {
		r := byID[id]
		if r.Outcome != matrix.Error || !strings.Contains(r.Detail, "exit status 2") || !strings.Contains(r.Detail, "panic: boom") {
			t.Errorf("missing result %d filled as %+v", id, r)
		}
	}
}

func TestExchangeFailsWhenNothingCameBack(t *testing.T) {
	failing := func(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) error {
		io.WriteString(stderr, "exec: no such file")
		return errors.New("exit status 127")
	}
	_, err := Exchange(context.Background(), []matrix.Probe{{ID: 1}}, failing)
	if err == nil || !strings.Contains(err.Error(), "exit status 127") || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("error = %v", err)
	}
}
