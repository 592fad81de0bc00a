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

// flakyTransport fails the first failures batches from each source listed,
// then runs them on inner.
type flakyTransport struct {
	inner    matrix.Transport
	mu       sync.Mutex
	failures map[string]int
}

func (f *flakyTransport) RunBatch(ctx context.Context, source matrix.Endpoint, probes []matrix.Probe) ([]matrix.Result, error) {
	f.mu.Lock()
	fail := f.failures[source.Name] > 0
	if fail {
		f.failures[source.Name]--
	}
	f.mu.Unlock()
	if fail {
		return nil, errors.New("error dialing backend: websocket: close 1006 (abnormal closure)")
	}
	return f.inner.RunBatch(ctx, source, probes)
}

func TestRunnerRetriesFailedBatchesAndCountsTheRetries(t *testing.T) {
	e, table := runnerFixture(t)
	flaky := &flakyTransport{inner: newFake(truthful(table)), failures: map[string]int{"x/a": 2, "y/c": 1}}
	rep, err := (&matrix.Runner{Transport: flaky, RetryInterval: time.Millisecond}).Run(context.Background(), table, e.Endpoints())
	if err != nil {
		t.Fatalf("a batch that fails twice and then runs fails the run: %v", err)
	}
	if len(rep.Failures()) != 0 || rep.TransportRetries != 3 {
		t.Errorf("failures %d, transport retries %d; want 0 and 3", len(rep.Failures()), rep.TransportRetries)
	}
}

func TestRunnerFailsWithTheTransportsErrorWhenRetriesRunOut(t *testing.T) {
	e, table := runnerFixture(t)
	for _, tc := range []struct {
		retries, attempts int
	}{{0, 3}, {1, 2}, {-1, 1}} {
		flaky := &flakyTransport{inner: newFake(truthful(table)), failures: map[string]int{"z/b": tc.attempts}}
		r := &matrix.Runner{Transport: flaky, RetryInterval: time.Millisecond, TransportRetries: tc.retries}
		_, err := r.Run(context.Background(), table, e.Endpoints())
		want := fmt.Sprintf("probing from z/b (%d attempts): error dialing backend: websocket", tc.attempts)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("TransportRetries %d: err = %v, want %q", tc.retries, err, want)
		}
	}
}

// listeningServers answers as a cluster whose policies are those of table
// and whose servers refuse what policy denies (a CNI rejecting with resets),
// except that the server of notListening refuses every probe, its own too,
// while listening(attempt of its self-probe) is false.
func listeningServers(table *matrix.Table, notListening matrix.Cell, listening func(selfAttempt int) bool) func(string, matrix.Probe, int) matrix.Result {
	var mu sync.Mutex
	selfAttempts := 0
	return func(from string, p matrix.Probe, _ int) matrix.Result {
		if p.Expect == notListening.To && p.Port == notListening.Port && p.Protocol == notListening.Protocol {
			mu.Lock()
			if from == notListening.To {
				selfAttempts++
			}
			up := listening(selfAttempts)
			mu.Unlock()
			if !up {
				return matrix.Result{Outcome: matrix.Refused, Detail: "connection refused"}
			}
		}
		allowed, _ := table.Get(from, p.Expect, matrix.PortProtocol{Port: p.Port, Protocol: p.Protocol})
		if allowed {
			return matrix.Result{Outcome: matrix.Connected, Peer: p.Expect}
		}
		return matrix.Result{Outcome: matrix.Refused, Detail: "connection reset by peer"}
	}
}

var yb80 = matrix.Cell{To: "y/b", Port: 80, Protocol: tcp}

func deniedCellsTo(t *testing.T, rep *matrix.Report, to matrix.Cell) []*matrix.CellResult {
	t.Helper()
	var out []*matrix.CellResult
	for _, c := range rep.Cells {
		if c.To == to.To && c.Port == to.Port && c.Protocol == to.Protocol && !c.Expected {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no denied cell to %s", to.To)
	}
	return out
}

func TestRunnerPassesACNIThatRejectsWithResets(t *testing.T) {
	e, table := runnerFixture(t)
	fake := newFake(listeningServers(table, yb80, func(int) bool { return true }))
	rep, err := (&matrix.Runner{Transport: fake}).Run(context.Background(), table, e.Endpoints())
	if err != nil {
		t.Fatal(err)
	}
	if f := rep.Failures(); len(f) != 0 || rep.Rounds != 1 {
		t.Fatalf("%d failures in %d rounds:\n%s", len(f), rep.Rounds, rep.FailureMessage(e))
	}
	// Every destination's own cell is in the first round: no extra batch.
	if got := int(fake.batches.Load()); got != len(e.Endpoints()) {
		t.Errorf("%d batches, want one per source (%d)", got, len(e.Endpoints()))
	}
}

func TestRunnerDoesNotTakeARefusalFromAServerNotYetListeningAsDenied(t *testing.T) {
	e, table := runnerFixture(t)
	// y/b's server on 80/TCP listens from its second self-probe on.
	fake := newFake(listeningServers(table, yb80, func(selfAttempt int) bool { return selfAttempt >= 2 }))
	rep, err := (&matrix.Runner{Transport: fake, Convergence: 5 * time.Second, RetryInterval: time.Millisecond}).Run(context.Background(), table, e.Endpoints())
	if err != nil {
		t.Fatal(err)
	}
	if f := rep.Failures(); len(f) != 0 {
		t.Fatalf("%d failures:\n%s", len(f), rep.FailureMessage(e))
	}
	for _, c := range deniedCellsTo(t, rep, yb80) {
		if len(c.History) < 3 || c.History[0] != matrix.Error || c.Last.Outcome != matrix.Refused || !c.Converged {
			t.Errorf("%s: history %v, want an error while the server did not listen, then refusals", c.Cell, c.History)
		}
	}
}

func TestRunnerReportsRefusalsFromACrashedServerAsProbeErrors(t *testing.T) {
	e, table := runnerFixture(t)
	fake := newFake(listeningServers(table, yb80, func(int) bool { return false }))
	rep, err := (&matrix.Runner{Transport: fake, Convergence: 100 * time.Millisecond, RetryInterval: time.Millisecond}).Run(context.Background(), table, e.Endpoints())
	if err != nil {
		t.Fatal(err)
	}
	failed := map[matrix.Cell]bool{}
	for _, c := range rep.Failures() {
		failed[c.Cell] = true
	}
	msg := rep.FailureMessage(e)
	for _, c := range deniedCellsTo(t, rep, yb80) {
		if !failed[c.Cell] || c.Last.Outcome != matrix.Error {
			t.Errorf("%s: %s, not failed as a probe error", c.Cell, c.Last.Outcome)
		}
	}
	if want := "does not answer its own probe of TCP 10.244.2.11:80 either (refused: connection refused): it is not listening"; !strings.Contains(msg, want) {
		t.Errorf("failure message lacks %q:\n%s", want, msg)
	}
}

func TestRunnerChecksARefusingServerWhoseOwnCellIsNotInTheRound(t *testing.T) {
	e, table := runnerFixture(t)
	honest := listeningServers(table, yb80, func(int) bool { return true })
	// x/b -> y/b 80/TCP connects at first (the enforcer is late), then is
	// refused: y/b's own cell converged in round 1 and is not probed again,
	// so the runner asks y/b's server itself whether it listens.
	fake := newFake(func(from string, p matrix.Probe, attempt int) matrix.Result {
		if from == "x/b" && p.Expect == "y/b" && p.Port == 80 && p.Protocol == tcp && attempt == 1 {
			return matrix.Result{Outcome: matrix.Connected, Peer: p.Expect}
		}
		return honest(from, p, attempt)
	})
	rep, err := (&matrix.Runner{Transport: fake, Convergence: 5 * time.Second, RetryInterval: time.Millisecond}).Run(context.Background(), table, e.Endpoints())
	if err != nil {
		t.Fatal(err)
	}
	if f := rep.Failures(); len(f) != 0 {
		t.Fatalf("%d failures:\n%s", len(f), rep.FailureMessage(e))
	}
	fake.mu.Lock()
	self := fake.attempts["y/b>y/b 80/TCP"]
	fake.mu.Unlock()
	// Round 1 probes y/b's own cell; rounds 2, 3 and the verification each check it.
	if self != 4 {
		t.Errorf("y/b probed its own 80/TCP %d times, want 4", self)
	}
}

func TestRunnerKeepsRefusalsFromDestinationsItCannotProbeFrom(t *testing.T) {
	e, table := runnerFixture(t)
	fake := newFake(listeningServers(table, yb80, func(int) bool { return false }))
	notYB := func(ep matrix.Endpoint) bool { return ep.Name != "y/b" }
	rep, err := (&matrix.Runner{Transport: fake, Sources: notYB, Convergence: -1}).Run(context.Background(), table, e.Endpoints())
	if err != nil {
		t.Fatal(err)
	}
	// Only the cells the API allows to y/b fail, refused: no probe error.
	for _, c := range rep.Failures() {
		if c.To != "y/b" || !c.Expected || c.Last.Outcome != matrix.Refused {
			t.Errorf("%s: expected allowed=%v, observed %s", c.Cell, c.Expected, c.Last.Outcome)
		}
	}
	for _, c := range deniedCellsTo(t, rep, yb80) {
		if c.Last.Outcome != matrix.Refused {
			t.Errorf("%s: %s, want the refusal kept as a verdict", c.Cell, c.Last.Outcome)
		}
	}
}
