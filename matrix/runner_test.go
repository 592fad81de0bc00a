package matrix_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netpolcheck/netpolcheck/matrix"
)

// fakeTransport answers probes from a function of (source, probe, attempt).
type fakeTransport struct {
	mu       sync.Mutex
	attempts map[string]int
	answer   func(from string, p matrix.Probe, attempt int) matrix.Result
	batches  atomic.Int32
}

func (f *fakeTransport) RunBatch(_ context.Context, source matrix.Endpoint, probes []matrix.Probe) ([]matrix.Result, error) {
	f.batches.Add(1)
	out := make([]matrix.Result, 0, len(probes))
	for _, p := range probes {
		key := fmt.Sprintf("%s>%s %d/%s", source.Name, p.Expect, p.Port, p.Protocol)
		f.mu.Lock()
		f.attempts[key]++
		n := f.attempts[key]
		f.mu.Unlock()
		res := f.answer(source.Name, p, n)
		res.ID = p.ID
		out = append(out, res)
	}
	return out, nil
}

func newFake(answer func(from string, p matrix.Probe, attempt int) matrix.Result) *fakeTransport {
	return &fakeTransport{attempts: map[string]int{}, answer: answer}
}

// truthful answers exactly what the table expects.
func truthful(t *matrix.Table) func(string, matrix.Probe, int) matrix.Result {
	return func(from string, p matrix.Probe, _ int) matrix.Result {
		allowed, _ := t.Get(from, p.Expect, matrix.PortProtocol{Port: p.Port, Protocol: p.Protocol})
		if allowed {
			return matrix.Result{Outcome: matrix.Connected, Peer: p.Expect}
		}
		return matrix.Result{Outcome: matrix.Timeout}
	}
}

func runnerFixture(t *testing.T) (*matrix.Engine, *matrix.Table) {
	e := engine(t, testModel(), policies(t, explainPolicies))
	return e, e.Table()
}

func TestRunnerPassesWhenTheClusterAgrees(t *testing.T) {
	e, table := runnerFixture(t)
	fake := newFake(truthful(table))
	var lastDone, lastTotal, calls int
	r := &matrix.Runner{Transport: fake, Progress: func(done, total int) {
		if done < lastDone {
			t.Errorf("progress went back from %d to %d", lastDone, done)
		}
		lastDone, lastTotal = done, total
		calls++
	}}
	rep, err := r.Run(context.Background(), table, e.Endpoints())
	if err != nil {
		t.Fatal(err)
	}
	cells, _ := table.Count()
	if len(rep.Cells) != cells || len(rep.Failures()) != 0 || rep.Rounds != 1 || rep.FailureMessage(e) != "" {
		t.Fatalf("cells %d/%d, failures %d, rounds %d", len(rep.Cells), cells, len(rep.Failures()), rep.Rounds)
	}
	if got := int(fake.batches.Load()); got != len(e.Endpoints()) {
		t.Errorf("%d batches, want one per source (%d)", got, len(e.Endpoints()))
	}
	if lastDone != cells || lastTotal != cells {
		t.Errorf("progress %d/%d", lastDone, lastTotal)
	}
	if calls != len(e.Endpoints())+1 {
		t.Errorf("%d progress calls, want one per source batch and one at the end of the round", calls)
	}
}

func TestRunnerRetriesUntilConvergedAndRecordsAttempts(t *testing.T) {
	e, table := runnerFixture(t)
	honest := truthful(table)
	// The destination y/b only starts enforcing on the third attempt.
	fake := newFake(func(from string, p matrix.Probe, attempt int) matrix.Result {
		if p.Expect == "y/b" && attempt < 3 {
			return matrix.Result{Outcome: matrix.Connected, Peer: p.Expect}
		}
		return honest(from, p, attempt)
	})
	r := &matrix.Runner{Transport: fake, Convergence: 5 * time.Second}
	rep, err := r.Run(context.Background(), table, e.Endpoints())
	if err != nil {
		t.Fatal(err)
	}
	if f := rep.Failures(); len(f) != 0 {
		t.Fatalf("%d failures:\n%s", len(f), rep.FailureMessage(e))
	}
	for _, c := range rep.Cells {
		if c.From == "x/b" && c.To == "y/b" && c.Port == 80 && c.Protocol == tcp {
			// wrong, wrong, right, right (confirmation), right (verification once all converged)
			if c.Attempts != 5 || !c.Converged || c.Flaky || strings.Join(outcomes(c), ",") != "connected,connected,timeout,timeout,timeout" {
				t.Errorf("cell %+v", c)
			}
			return
		}
	}
	t.Fatal("cell x/b -> y/b 80/TCP not probed")
}

func outcomes(c *matrix.CellResult) []string {
	var s []string
	for _, o := range c.History {
		s = append(s, string(o))
	}
	return s
}

func TestRunnerReportsWrongCellsFlakyCellsAndWrongPeers(t *testing.T) {
	e, table := runnerFixture(t)
	honest := truthful(table)
	fake := newFake(func(from string, p matrix.Probe, attempt int) matrix.Result {
		switch {
		case from == "x/c" && p.Expect == "y/b" && p.Port == 81 && p.Protocol == udp:
			return matrix.Result{Outcome: matrix.Connected, Peer: "y/b/serve-81-udp"} // never enforced
		case from == "z/a" && p.Expect == "x/b" && p.Port == 80 && p.Protocol == tcp:
			return matrix.Result{Outcome: matrix.WrongPeer, Peer: "x/c/serve-80-tcp", Detail: "answered by x/c"}
		case from == "x/a" && p.Expect == "y/b" && p.Port == 80 && p.Protocol == tcp:
			// expected allowed: fails, agrees once, then fails for good -> wrong, not flaky
			if attempt == 2 {
				return honest(from, p, attempt)
			}
			return matrix.Result{Outcome: matrix.Timeout}
		}
		return honest(from, p, attempt)
	})
	r := &matrix.Runner{Transport: fake, Convergence: 300 * time.Millisecond}
	rep, err := r.Run(context.Background(), table, e.Endpoints())
	if err != nil {
		t.Fatal(err)
	}
	if f := rep.Failures(); len(f) != 3 {
		t.Fatalf("%d failures, want 3:\n%s", len(f), rep.FailureMessage(e))
	}
	msg := rep.FailureMessage(e)
	for _, want := range []string{
		"x/c -> y/b 81/UDP: expected denied, observed connected",
		"z/a -> x/b 80/TCP: expected allowed, observed wrong-peer",
		"answered by x/c/serve-80-tcp",
		"x/a -> y/b 80/TCP: expected allowed, observed timeout (",
		"diff 81/UDP",
		"denied by ingress: y/b is isolated for ingress by y/deny-all, y/web and no rule allows it",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure message lacks %q:\n%s", want, msg)
		}
	}
}

type failingTransport struct{}

func (failingTransport) RunBatch(context.Context, matrix.Endpoint, []matrix.Probe) ([]matrix.Result, error) {
	return nil, errors.New("exec: container not found")
}

func TestRunnerErrorsAndICMP(t *testing.T) {
	e, table := runnerFixture(t)
	if _, err := (&matrix.Runner{Transport: failingTransport{}}).Run(context.Background(), table, e.Endpoints()); err == nil || !strings.Contains(err.Error(), "container not found") {
		t.Errorf("err = %v", err)
	}
	honest := truthful(table)
	fake := newFake(func(from string, p matrix.Probe, attempt int) matrix.Result {
		if p.Protocol == matrix.ProtocolICMP {
			return matrix.Result{Outcome: matrix.Timeout}
		}
		return honest(from, p, attempt)
	})
	rep, err := (&matrix.Runner{Transport: fake, ICMP: true, Sources: func(ep matrix.Endpoint) bool { return !ep.External }}).Run(context.Background(), table, e.Endpoints())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Failures()) != 0 || len(rep.ICMP) != 9*10 || rep.ICMP["x/a -> y/b"] != matrix.Timeout {
		t.Errorf("failures %d, icmp %d", len(rep.Failures()), len(rep.ICMP))
	}
}

func TestRunnerTellsFlappingFromConverging(t *testing.T) {
	e, table := runnerFixture(t)
	honest := truthful(table)
	fake := newFake(func(from string, p matrix.Probe, attempt int) matrix.Result {
		wrong := matrix.Result{Outcome: matrix.Connected, Peer: p.Expect}
		switch {
		case from == "x/b" && p.Expect == "y/b" && p.Port == 80 && p.Protocol == tcp:
			// converging through a transient: wrong, right, wrong, right, right (and right when verified)
			if attempt == 1 || attempt == 3 {
				return wrong
			}
		case from == "x/c" && p.Expect == "y/b" && p.Port == 80 && p.Protocol == tcp:
			// flapping: wrong, right, right, then wrong when verified
			if attempt == 1 || attempt == 4 {
				return wrong
			}
		}
		return honest(from, p, attempt)
	})
	rep, err := (&matrix.Runner{Transport: fake, Convergence: 5 * time.Second, RetryInterval: time.Millisecond}).Run(context.Background(), table, e.Endpoints())
	if err != nil {
		t.Fatal(err)
	}
	failures := rep.Failures()
	if len(failures) != 1 || failures[0].From != "x/c" || !failures[0].Flaky {
		t.Fatalf("failures %+v, want only x/c -> y/b flaky:\n%s", failures, rep.FailureMessage(e))
	}
	for _, c := range rep.Cells {
		if c.From == "x/b" && c.To == "y/b" && c.Port == 80 && c.Protocol == tcp {
			if !c.Converged || c.Flaky || c.Attempts != 6 {
				t.Errorf("converging cell: %+v", c)
			}
		}
	}
	if !strings.Contains(rep.FailureMessage(e), "FLAKY") {
		t.Errorf("failure message does not say FLAKY:\n%s", rep.FailureMessage(e))
	}
}

func TestFailureMessageExplainsTheFirstCellsOnly(t *testing.T) {
	e, table := runnerFixture(t)
	everythingConnects := newFake(func(_ string, p matrix.Probe, _ int) matrix.Result {
		return matrix.Result{Outcome: matrix.Connected, Peer: p.Expect}
	})
	rep, err := (&matrix.Runner{Transport: everythingConnects, Convergence: -1}).Run(context.Background(), table, e.Endpoints())
	if err != nil {
		t.Fatal(err)
	}
	wrong := len(rep.Failures())
	if wrong <= matrix.MaxExplainedCells {
		t.Fatalf("only %d wrong cells", wrong)
	}
	msg := rep.FailureMessage(e)
	if got := strings.Count(msg, "attempts: "); got != matrix.MaxExplainedCells {
		t.Errorf("%d cells listed, want %d", got, matrix.MaxExplainedCells)
	}
	if want := fmt.Sprintf("... and %d more wrong cells", wrong-matrix.MaxExplainedCells); !strings.Contains(msg, want) {
		t.Errorf("message lacks %q", want)
	}
}
