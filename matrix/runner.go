package matrix

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Runner probes every cell of an expected truth table through a Transport
// and builds the observed table. Every source's batch runs at once, so a
// round costs about one probe timeout whatever the matrix size; cells that
// disagree with the expectation are probed again, round after round, until
// they agree (twice in a row, so a passing glimpse is not taken for
// convergence) or the convergence deadline passes. When every cell has
// converged, the cells that needed retries are probed once more: one that
// disagrees again flaps, and is reported as flaky. A refusal counts as
// denied only when the destination's server answers its own probe of the
// port (checkRefusals); a batch the transport fails is run again a few
// times (TransportRetries) before the run fails with the transport's error.
type Runner struct {
	Transport Transport
	// ProbeTimeout bounds each probe (default 1s).
	ProbeTimeout time.Duration
	// Convergence is how long wrong cells are retried (default 10s; 0 keeps the default,
	// a negative value probes once).
	Convergence time.Duration
	// RetryInterval is the least time between the starts of two rounds
	// (default 250ms), so fast wrong answers do not turn into a busy loop.
	RetryInterval time.Duration
	// Sources limits which endpoints probes are sent from (nil: all of them).
	// Cells from other sources are reported as not probed.
	Sources func(Endpoint) bool
	// Address returns the address to probe a destination at (nil: its primary IP).
	Address func(to Endpoint, pp PortProtocol) string
	// ICMP adds an informational ICMP echo probe per pair of endpoints.
	ICMP bool
	// Progress, when set, is called as probing advances, with the cells
	// settled and the total: during a round, done grows as source batches
	// finish; after it, done counts the cells that need no more probing.
	Progress func(done, total int)
	// TransportRetries is how many times a source's batch is run again when
	// the transport fails as a whole (a kube exec that breaks, say) before
	// the run fails with the transport's error (default 2; a negative value
	// retries never).
	TransportRetries int
}

// DefaultTransportRetries is how many times a failed batch is run again
// when Runner.TransportRetries is 0.
const DefaultTransportRetries = 2

// CellResult is everything observed about one cell.
type CellResult struct {
	Cell
	Expected bool `json:"expected"`
	// Attempts is how many times the cell was probed; History their outcomes.
	Attempts int       `json:"attempts"`
	History  []Outcome `json:"history"`
	Last     Result    `json:"last"`
	// Converged is set when the last two probes (or the only one) agree with
	// the expectation; ConvergedAfter is when the round that first agreed
	// started, counted from the start of the run (0 for the first round).
	Converged      bool          `json:"converged"`
	ConvergedAfter time.Duration `json:"convergedAfterNs"`
	// Flaky is set when the cell had converged (agreed twice in a row after
	// disagreeing) and a verification probe, once every cell converged,
	// disagreed again.
	Flaky bool `json:"flaky,omitempty"`
}

// Report is the result of a run.
type Report struct {
	Expected *Table
	Observed *Table
	// Cells holds every probed cell, in table order.
	Cells []*CellResult
	// ICMP maps "from -> to" to the informational ICMP outcome.
	ICMP     map[string]Outcome
	Rounds   int
	Duration time.Duration
	// TransportRetries counts the batches that were run again because the
	// transport failed as a whole.
	TransportRetries int
}

// Failures returns the cells that disagree with the expectation or whose
// probe did not behave (a reply from the wrong peer, or an error), plus the
// cells that were never probed.
func (r *Report) Failures() []*CellResult {
	var out []*CellResult
	for _, c := range r.Cells {
		if c.Allowed != c.Expected || c.Last.Outcome == WrongPeer || c.Last.Outcome == Error || c.Flaky {
			out = append(out, c)
		}
	}
	return out
}

// Explainer explains an expected cell; *Engine is one.
type Explainer interface {
	Explain(from, to string, pp PortProtocol) (*Explanation, error)
}

// MaxExplainedCells bounds how many wrong cells a failure message lists and
// explains one by one; the grids show every wrong cell.
const MaxExplainedCells = 10

// FailureMessage renders a failed run for a human: the expected, observed and
// diff grids of every port with wrong cells, then the first
// MaxExplainedCells wrong cells with what was observed and why the engine
// expected otherwise. It returns "" when the run passed.
func (r *Report) FailureMessage(explain Explainer) string {
	failures := r.Failures()
	if len(failures) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d cells wrong after %d rounds (%s)\n\n", len(failures), len(r.Cells), r.Rounds, r.Duration.Round(time.Millisecond))
	if grids, err := Comparison(r.Expected, r.Observed); err == nil {
		b.WriteString(grids)
	}
	for i, c := range failures {
		if i == MaxExplainedCells {
			fmt.Fprintf(&b, "... and %d more wrong cells: the diff grids above show them all\n", len(failures)-i)
			break
		}
		fmt.Fprintf(&b, "%s: expected %s, observed %s (%d attempts: %s)", c.Cell, verdict(c.Expected), c.Last.Outcome, c.Attempts, joinOutcomes(c.History))
		if c.Last.Detail != "" {
			fmt.Fprintf(&b, "; %s", c.Last.Detail)
		}
		if c.Last.Outcome == WrongPeer {
			fmt.Fprintf(&b, "; answered by %s", c.Last.Peer)
		}
		if c.Flaky {
			b.WriteString("; FLAKY: it agreed with the expectation, then did not")
		}
		b.WriteString("\n")
		if explain != nil {
			if x, err := explain.Explain(c.From, c.To, c.PortProtocol()); err == nil {
				b.WriteString(indent(x.String(), "    "))
			}
		}
	}
	return b.String()
}

func verdict(allowed bool) string {
	if allowed {
		return "allowed"
	}
	return "denied"
}

// joinOutcomes lists outcomes, runs of the same one written once with a count.
func joinOutcomes(h []Outcome) string {
	var parts []string
	for i := 0; i < len(h); {
		j := i
		for j < len(h) && h[j] == h[i] {
			j++
		}
		if j-i > 1 {
			parts = append(parts, fmt.Sprintf("%s x%d", h[i], j-i))
		} else {
			parts = append(parts, string(h[i]))
		}
		i = j
	}
	return strings.Join(parts, ",")
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}

// pendingCell is a cell to probe with its bookkeeping.
type pendingCell struct {
	result *CellResult
	from   int
	to     int
	port   int
	host   string
	// confirm: the cell agreed after disagreeing and needs one more agreeing probe.
	confirm bool
	// retried: the cell disagreed at least once.
	retried bool
}

// record takes one probe result for the cell and reports whether the cell
// must be probed again: it disagrees, or it agreed right after disagreeing
// and needs a second agreement in a row. A disagreement between the two is
// the cell still converging (a policy change passing through a transient
// state), not flapping.
func (c *pendingCell) record(res Result, observed *Table, elapsed time.Duration) (again bool) {
	cr := c.result
	cr.Attempts++
	cr.History = append(cr.History, res.Outcome)
	cr.Last = res
	cr.Allowed = res.Outcome.Reached()
	observed.set(c.from, c.to, c.port, cr.Allowed)
	agrees := cr.Allowed == cr.Expected && res.Outcome != WrongPeer && res.Outcome != Error
	switch {
	case agrees && (cr.Attempts == 1 || c.confirm):
		cr.Converged = true
		if cr.Attempts == 1 {
			cr.ConvergedAfter = elapsed
		}
		return false
	case agrees:
		cr.ConvergedAfter = elapsed
		c.confirm = true
		return true
	default:
		c.confirm = false
		return true
	}
}

// verify probes the cells that needed retries once more after every cell
// converged; a cell that now disagrees flaps: it is marked Flaky and fails.
func (r *Runner) verify(ctx context.Context, endpoints []Endpoint, cells []*pendingCell, report *Report, timeout time.Duration) error {
	if len(cells) == 0 {
		return nil
	}
	report.Rounds++
	results, err := r.probeCells(ctx, endpoints, cells, nil, timeout, report, func(int) {})
	if err != nil {
		return err
	}
	for i, c := range cells {
		cr := c.result
		cr.Attempts++
		cr.History = append(cr.History, results[i].Outcome)
		cr.Last = results[i]
		cr.Allowed = results[i].Outcome.Reached()
		report.Observed.set(c.from, c.to, c.port, cr.Allowed)
		if cr.Allowed != cr.Expected || results[i].Outcome == WrongPeer || results[i].Outcome == Error {
			cr.Flaky, cr.Converged = true, false
		}
	}
	return nil
}

// Run probes every present cell of expected, whose endpoints are given in
// table order.
func (r *Runner) Run(ctx context.Context, expected *Table, endpoints []Endpoint) (*Report, error) {
	if r.Transport == nil {
		return nil, fmt.Errorf("runner has no transport")
	}
	if len(endpoints) != len(expected.names) {
		return nil, fmt.Errorf("%d endpoints for a table of %d", len(endpoints), len(expected.names))
	}
	for i, ep := range endpoints {
		if ep.Name != expected.names[i] {
			return nil, fmt.Errorf("endpoint %d is %q, the table has %q", i, ep.Name, expected.names[i])
		}
	}
	timeout, convergence := r.ProbeTimeout, r.Convergence
	if timeout <= 0 {
		timeout = time.Second
	}
	if convergence == 0 {
		convergence = 10 * time.Second
	}
	interval := r.retryInterval()
	start := time.Now()
	report := &Report{Expected: expected, Observed: NewTable(expected.names, expected.ports), ICMP: map[string]Outcome{}}
	var pending []*pendingCell
	n := len(endpoints)
	for p, pp := range expected.ports {
		for f := range n {
			if !r.isSource(endpoints[f]) {
				continue
			}
			for d := range n {
				bit := f*n + d
				if !expected.present[p].has(bit) {
					continue
				}
				host, err := r.address(endpoints[d], pp)
				if err != nil {
					return nil, err
				}
				cell := &CellResult{Cell: Cell{From: endpoints[f].Name, To: endpoints[d].Name, Port: pp.Port, Protocol: pp.Protocol}, Expected: expected.allowed[p].has(bit)}
				report.Cells = append(report.Cells, cell)
				pending = append(pending, &pendingCell{result: cell, from: f, to: d, port: p, host: host})
			}
		}
	}
	var icmp []*pendingCell
	if r.ICMP {
		for f := range n {
			if !r.isSource(endpoints[f]) {
				continue
			}
			for d := range n {
				if ip, ok := endpoints[d].PrimaryIP(); ok && f != d {
					icmp = append(icmp, &pendingCell{from: f, to: d, host: ip.String()})
				}
			}
		}
	}
	total := len(pending)
	done := 0
	// retried holds the cells that disagreed at least once: once every cell
	// agrees, they are probed once more to tell convergence from flapping.
	var retried []*pendingCell
	for round := 1; len(pending) > 0 || len(icmp) > 0; round++ {
		report.Rounds = round
		roundStart := time.Now()
		settled := total - len(pending)
		results, err := r.probeCells(ctx, endpoints, pending, icmp, timeout, report, func(probed int) {
			if r.Progress != nil {
				r.Progress(settled+probed, total)
			}
		})
		if err != nil {
			return nil, err
		}
		for i, c := range icmp {
			report.ICMP[endpoints[c.from].Name+" -> "+endpoints[c.to].Name] = results[len(pending)+i].Outcome
		}
		icmp = nil
		// A cell that agrees in this round agreed when the round's probes
		// were sent (the round's duration is mostly denied probes timing out).
		elapsed := roundStart.Sub(start)
		var again []*pendingCell
		for i, c := range pending {
			if c.record(results[i], report.Observed, elapsed) {
				again = append(again, c)
			}
		}
		done = total - len(again)
		if r.Progress != nil {
			r.Progress(done, total)
		}
		if len(again) == 0 || convergence < 0 || time.Since(start) >= convergence {
			if len(again) == 0 && convergence >= 0 {
				if err := r.verify(ctx, endpoints, retried, report, timeout); err != nil {
					return nil, err
				}
			}
			break
		}
		for _, c := range again {
			if !c.retried {
				c.retried = true
				retried = append(retried, c)
			}
		}
		pending = again
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(interval - time.Since(roundStart)):
		}
	}
	report.Duration = time.Since(start)
	return report, nil
}

func (r *Runner) address(to Endpoint, pp PortProtocol) (string, error) {
	if r.Address != nil {
		return r.Address(to, pp), nil
	}
	ip, ok := to.PrimaryIP()
	if !ok {
		return "", fmt.Errorf("%s has no IP address to probe", to.Name)
	}
	return ip.String(), nil
}

// isSource reports whether probes can be sent from the endpoint.
func (r *Runner) isSource(ep Endpoint) bool { return r.Sources == nil || r.Sources(ep) }

func (r *Runner) retryInterval() time.Duration {
	if r.RetryInterval <= 0 {
		return 250 * time.Millisecond
	}
	return r.RetryInterval
}

func (r *Runner) transportRetries() int {
	switch {
	case r.TransportRetries == 0:
		return DefaultTransportRetries
	case r.TransportRetries < 0:
		return 0
	}
	return r.TransportRetries
}

// probe is the cell's probe (sent from c.from, or from c.to to check its
// server).
func (c *pendingCell) probe(endpoints []Endpoint, timeout time.Duration) Probe {
	return Probe{Host: c.host, Port: c.result.Port, Protocol: c.result.Protocol, Expect: endpoints[c.to].Name, TimeoutMillis: timeout.Milliseconds()}
}

// sourcedProbe is one probe with the endpoint it is sent from.
type sourcedProbe struct {
	from  int
	probe Probe
	// cell: the probe is a cell's (not ICMP, not a check), for progress.
	cell bool
}

// probeCells probes cells, then icmp, in one round and returns their
// results in that order, each refusal of a cell already checked against
// its destination's own server (checkRefusals).
func (r *Runner) probeCells(ctx context.Context, endpoints []Endpoint, cells, icmp []*pendingCell, timeout time.Duration, report *Report, probed func(int)) ([]Result, error) {
	probes := make([]sourcedProbe, 0, len(cells)+len(icmp))
	for _, c := range cells {
		probes = append(probes, sourcedProbe{from: c.from, cell: true, probe: c.probe(endpoints, timeout)})
	}
	for _, c := range icmp {
		probes = append(probes, sourcedProbe{from: c.from, probe: Probe{Host: c.host, Protocol: ProtocolICMP,
			Expect: endpoints[c.to].Name, TimeoutMillis: timeout.Milliseconds()}})
	}
	results, err := r.round(ctx, endpoints, probes, report, probed)
	if err != nil {
		return nil, err
	}
	if err := r.checkRefusals(ctx, endpoints, cells, results[:len(cells)], timeout, report); err != nil {
		return nil, err
	}
	return results, nil
}

// listener is a destination's server on one address and port.
type listener struct {
	to   int
	host string
	pp   PortProtocol
}

// checkRefusals keeps a refusal as a verdict (denied) only when the
// destination's server is shown to listen: a server that has not started
// yet, or has crashed, refuses too, and that is no policy's doing. The
// proof is the destination probing its own address and port from inside
// its own namespace, which the API always allows and no CNI sees (a
// destination's own cell of the round serves when it was probed in it). A
// refusal whose self-probe did not connect becomes an Error result, so the
// cell is probed again and fails as a probe error if it never recovers; a
// CNI that rejects with a reset or an ICMP error still passes, its
// servers answering their own probes. Refusals from destinations probes
// cannot be sent from stay verdicts.
func (r *Runner) checkRefusals(ctx context.Context, endpoints []Endpoint, cells []*pendingCell, results []Result, timeout time.Duration, report *Report) error {
	self := map[listener]Result{}
	key := func(c *pendingCell) listener {
		return listener{to: c.to, host: c.host, pp: c.result.PortProtocol()}
	}
	for i, c := range cells {
		if c.from == c.to {
			self[key(c)] = results[i]
		}
	}
	var checks []sourcedProbe
	var checked []listener // aligned with checks
	for i, c := range cells {
		k := key(c)
		if _, ok := self[k]; ok || results[i].Outcome != Refused || !r.isSource(endpoints[c.to]) {
			continue
		}
		self[k] = Result{} // until checked
		checked = append(checked, k)
		checks = append(checks, sourcedProbe{from: c.to, probe: c.probe(endpoints, timeout)})
	}
	if len(checks) > 0 {
		out, err := r.round(ctx, endpoints, checks, report, func(int) {})
		if err != nil {
			return fmt.Errorf("checking that refusing servers listen: %w", err)
		}
		for i, k := range checked {
			self[k] = out[i]
		}
	}
	for i, c := range cells {
		res := results[i]
		own, ok := self[key(c)]
		if res.Outcome != Refused || !ok || own.Outcome == Connected {
			continue
		}
		results[i] = Result{ID: res.ID, Outcome: Error, LatencyMicros: res.LatencyMicros,
			Detail: fmt.Sprintf("refused (%s), but the server of %s does not answer its own probe of %s %s:%d either (%s: %s): it is not listening, so this is no verdict",
				res.Detail, endpoints[c.to].Name, c.result.Protocol, c.host, c.result.Port, own.Outcome, own.Detail)}
	}
	return nil
}

// round runs one batch per source, all at once, and returns the results
// aligned with probes. probed is called, one call at a time, with the
// number of cells probed so far as batches finish. Batches the transport
// fails are run again (runBatch).
func (r *Runner) round(ctx context.Context, endpoints []Endpoint, probes []sourcedProbe, report *Report, probed func(int)) ([]Result, error) {
	type batch struct {
		probes []Probe
		index  []int // position in probes
	}
	batches := map[int]*batch{}
	for i, sp := range probes {
		b := batches[sp.from]
		if b == nil {
			b = &batch{}
			batches[sp.from] = b
		}
		p := sp.probe
		p.ID = len(b.probes)
		b.probes = append(b.probes, p)
		b.index = append(b.index, i)
	}
	results := make([]Result, len(probes))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	cellsProbed := 0
	for from, b := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, retries, err := r.runBatch(ctx, endpoints[from], b.probes)
			mu.Lock()
			defer mu.Unlock()
			report.TransportRetries += retries
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			got := make([]bool, len(b.probes))
			for _, res := range out {
				if res.ID < 0 || res.ID >= len(b.probes) || got[res.ID] {
					continue
				}
				got[res.ID] = true
				results[b.index[res.ID]] = res
			}
			for id, ok := range got {
				if !ok {
					results[b.index[id]] = Result{ID: id, Outcome: Error, Detail: "the transport returned no result for this probe"}
				}
			}
			for _, at := range b.index {
				if probes[at].cell {
					cellsProbed++
				}
			}
			probed(cellsProbed)
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return results, ctx.Err()
}

// runBatch runs one source's batch, running it again up to
// transportRetries times (RetryInterval apart) when the transport fails as
// a whole, and returns how many times it did. When every attempt fails it
// returns the transport's last error.
func (r *Runner) runBatch(ctx context.Context, source Endpoint, probes []Probe) ([]Result, int, error) {
	limit := r.transportRetries()
	for retries := 0; ; retries++ {
		out, err := r.Transport.RunBatch(ctx, source, probes)
		if err == nil {
			return out, retries, nil
		}
		if retries == limit || !sleep(ctx, r.retryInterval()) {
			return nil, retries, fmt.Errorf("probing from %s (%d attempts): %w", source.Name, retries+1, err)
		}
	}
}

// sleep waits for d and reports whether ctx was still live at the end.
func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
