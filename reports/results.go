// Package reports defines netpolcheck's results format (results.json), builds
// it from runner reports, reads it back, reads JUnit files, and compares runs
// across CNIs.
package reports

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/netpolcheck/netpolcheck/matrix"
)

// SchemaVersion is the version of the results format written by this package.
const SchemaVersion = 1

// Case states.
const (
	Passed  = "passed"
	Failed  = "failed"
	Skipped = "skipped"
	// Incomplete: the case agreed wherever it was probed, but none of its
	// subject cells (see Step.Subject) could be probed, so it tested nothing
	// of what it is about; it is neither passed nor failed.
	Incomplete = "incomplete"
)

// LabelImplementationDefined marks cases whose verdict depends on behaviour
// the API leaves to implementations; a CNI that differs there diverges, it
// does not fail.
const LabelImplementationDefined = "ImplementationDefined"

// Run is the results of one run of the suites against one cluster and CNI.
type Run struct {
	SchemaVersion int `json:"schemaVersion"`
	// Name labels the run in comparisons (by default the CNI's name).
	Name              string    `json:"name"`
	CNI               string    `json:"cni"`
	Provider          string    `json:"provider"`
	KubernetesVersion string    `json:"kubernetesVersion,omitempty"`
	StartedAt         time.Time `json:"startedAt"`
	DurationSeconds   float64   `json:"durationSeconds"`
	// TimeToEnforce summarises the cases' times to enforce (Write fills it
	// in); nil when no case recorded one.
	TimeToEnforce *EnforceTimes `json:"timeToEnforce,omitempty"`
	Cases         []Case        `json:"cases"`
}

// Case is one test case: a recipe, a conformance case or a generated case.
type Case struct {
	// ID is stable across runs: "<suite>/<case>", such as "recipes/seed004/5.7".
	ID              string   `json:"id"`
	Name            string   `json:"name"`
	Suite           string   `json:"suite"`
	Labels          []string `json:"labels,omitempty"`
	State           string   `json:"state"`
	DurationSeconds float64  `json:"durationSeconds"`
	// Failure is the failure message, when State is failed.
	Failure string `json:"failure,omitempty"`
	Steps   []Step `json:"steps,omitempty"`
}

// ImplementationDefined reports whether the case carries the label.
func (c Case) ImplementationDefined() bool {
	return slices.Contains(c.Labels, LabelImplementationDefined)
}

// OnlyImplementationDefinedMismatches reports whether the case has wrong
// cells and every one has a verdict that depends on implementation-defined
// behaviour, with every check through a Service agreeing, so that its
// failure is a divergence, not a failure. A case that failed without wrong
// cells (pods never ready, a transport error, a document contradicting the
// engine, or no recorded steps at all) failed for another reason.
func (c Case) OnlyImplementationDefinedMismatches() bool {
	wrong := 0
	for _, s := range c.Steps {
		if s.Wrong > s.ImplementationDefinedWrong {
			return false
		}
		if len(s.WrongServices()) > 0 {
			return false
		}
		wrong += s.Wrong
	}
	return wrong > 0
}

// NotProbed counts the cells of the case's expected tables that were not
// probed, over every step.
func (c Case) NotProbed() int {
	n := 0
	for _, s := range c.Steps {
		n += s.NotProbed
	}
	return n
}

// SubjectNotProbed reports whether the case has subject cells and none of
// them was probed, in any step: a case that otherwise passed is then
// Incomplete.
func (c Case) SubjectNotProbed() bool {
	subject, notProbed := 0, 0
	for _, s := range c.Steps {
		subject += s.Subject
		notProbed += s.SubjectNotProbed
	}
	return subject > 0 && notProbed == subject
}

// Divergent reports whether a failed case failed only where the API leaves
// the behaviour to the implementation.
func (c Case) Divergent() bool {
	return c.State == Failed && c.ImplementationDefined() && c.OnlyImplementationDefinedMismatches()
}

// FailureKind names how a failed case failed: Divergent when only
// implementation-defined cells were wrong, else Failed.
func (c Case) FailureKind() string {
	if c.Divergent() {
		return Divergent
	}
	return Failed
}

// MaxMismatches bounds the wrong cells a step records one by one, with their
// explanations; its Table still holds every cell.
const MaxMismatches = 10

// Step is one probe matrix of a case.
type Step struct {
	Name string `json:"name"`
	// Cells counts the probed cells, Wrong those that disagreed.
	Cells  int `json:"cells"`
	Wrong  int `json:"wrong"`
	Rounds int `json:"rounds"`
	// TransportRetries counts the probe batches run again because the
	// transport (kube exec) failed as a whole.
	TransportRetries int `json:"transportRetries,omitempty"`
	// NotProbed counts the cells of the expected table that were not probed:
	// they involve an endpoint the provider cannot reach (an external host on
	// kind or an existing cluster). Table shows them as '?'.
	NotProbed int `json:"notProbed,omitempty"`
	// Subject counts the step's subject cells (see SubjectOf), and
	// SubjectNotProbed those of them that were not probed.
	Subject          int `json:"subject,omitempty"`
	SubjectNotProbed int `json:"subjectNotProbed,omitempty"`
	// ImplementationDefinedWrong counts the wrong cells whose expected
	// verdict depends on implementation-defined behaviour.
	ImplementationDefinedWrong int `json:"implementationDefinedWrong,omitempty"`
	// Convergence summarises, over the step's cells, the time from the start
	// of probing until each cell agreed with the expectation.
	Convergence Convergence `json:"convergence"`
	// EnforcedAfterSeconds is the time from the step's start to the first
	// round in which every cell agreed (see EnforcedAfter); nil when a cell
	// never agreed.
	EnforcedAfterSeconds *float64 `json:"enforcedAfterSeconds,omitempty"`
	// Mismatches are the first MaxMismatches wrong cells.
	Mismatches []Mismatch `json:"mismatches,omitempty"`
	Table      *Snapshot  `json:"table,omitempty"`
	// Services are the step's outcomes probed through a Service, after its
	// matrix.
	Services []ServiceCheck `json:"services,omitempty"`
}

// ServiceCheck is a stated outcome probed through a Service: by its DNS
// name, its ClusterIP or a node port. Policies apply after translation, so
// To, Port and Protocol are the backend pod's and Expected is the engine's
// verdict for that cell (by name, the lookup's too).
type ServiceCheck struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Port     int32  `json:"port"`
	Protocol string `json:"protocol"`
	// Service is "namespace/name", By how it was reached ("name",
	// "clusterIP", "nodePort" or "lookup"), ServicePort the port the client
	// connected to.
	Service     string `json:"service"`
	By          string `json:"by"`
	ServicePort int32  `json:"servicePort,omitempty"`
	Expected    bool   `json:"expected"`
	// Observed is the last round's outcome of every probe of the check (one
	// per node for a node port).
	Observed string `json:"observed"`
	Rounds   int    `json:"rounds"`
	Agrees   bool   `json:"agrees"`
}

// WrongServices returns the step's checks through Services that disagree
// with the engine.
func (s Step) WrongServices() []ServiceCheck {
	var out []ServiceCheck
	for _, sc := range s.Services {
		if !sc.Agrees {
			out = append(out, sc)
		}
	}
	return out
}

// String renders the check on one line.
func (c ServiceCheck) String() string {
	return fmt.Sprintf("%s -> %s %d/%s via %s %s: expected %s, observed %s after %d rounds",
		c.From, c.To, c.Port, c.Protocol, c.Service, c.By, verdictWord(c.Expected), c.Observed, c.Rounds)
}

// Convergence holds percentiles in seconds.
type Convergence struct {
	P50 float64 `json:"p50Seconds"`
	P99 float64 `json:"p99Seconds"`
	Max float64 `json:"maxSeconds"`
}

// Mismatch is a wrong cell and why the engine expected otherwise.
type Mismatch struct {
	From        string `json:"from"`
	To          string `json:"to"`
	Port        int32  `json:"port"`
	Protocol    string `json:"protocol"`
	Expected    bool   `json:"expected"`
	Observed    string `json:"observed"`
	Attempts    int    `json:"attempts"`
	Flaky       bool   `json:"flaky,omitempty"`
	Detail      string `json:"detail,omitempty"`
	Explanation string `json:"explanation,omitempty"`
	// ImplementationDefined names the implementation-defined behaviours the
	// expected verdict depends on (see matrix.ImplementationDefinedIPBlockPodIP).
	ImplementationDefined []string `json:"implementationDefined,omitempty"`
}

// Snapshot is a compact copy of an expected and an observed truth table:
// for each port, a string of one symbol per (source, destination), row-major:
// '.' allowed, 'X' denied, '-' no cell, '?' expected but never observed.
type Snapshot struct {
	Endpoints []string `json:"endpoints"`
	Ports     []string `json:"ports"`
	Expected  []string `json:"expected"`
	Observed  []string `json:"observed"`
}

// Cell returns the expected and observed symbols of a cell.
func (s *Snapshot) Cell(port, from, to int) (expected, observed byte) {
	i := from*len(s.Endpoints) + to
	return s.Expected[port][i], s.Observed[port][i]
}

// Coverage is what a step was to probe, when the runner probed only part of
// it: Expected is the step's whole expected table (the runner's holds the
// probed cells only) and Subject holds the step's subject cells (see
// SubjectOf). Either may be nil: every cell was probed, no subject is known.
type Coverage struct {
	Expected *matrix.Table
	Subject  *matrix.Table
}

// StepOf summarises a runner report into a Step, explaining every wrong cell
// and counting the cells of cov.Expected that the runner did not probe.
func StepOf(name string, rep *matrix.Report, explain matrix.Explainer, cov Coverage) Step {
	failures := rep.Failures()
	expected := cov.Expected
	if expected == nil {
		expected = rep.Expected
	}
	step := Step{Name: name, Cells: len(rep.Cells), Wrong: len(failures), Rounds: rep.Rounds, TransportRetries: rep.TransportRetries, Table: SnapshotOf(expected, rep.Observed)}
	expected.Each(func(c matrix.Cell) bool {
		_, probed := rep.Expected.Get(c.From, c.To, c.PortProtocol())
		subject := false
		if cov.Subject != nil {
			_, subject = cov.Subject.Get(c.From, c.To, c.PortProtocol())
		}
		if subject {
			step.Subject++
		}
		if !probed {
			step.NotProbed++
			if subject {
				step.SubjectNotProbed++
			}
		}
		return true
	})
	var times []float64
	for _, c := range rep.Cells {
		if c.Converged || c.Allowed == c.Expected {
			times = append(times, c.ConvergedAfter.Seconds())
		}
	}
	step.Convergence = convergence(times)
	for _, c := range failures {
		m := Mismatch{From: c.From, To: c.To, Port: c.Port, Protocol: string(c.Protocol), Expected: c.Expected,
			Observed: string(c.Last.Outcome), Attempts: c.Attempts, Flaky: c.Flaky, Detail: c.Last.Detail}
		if explain != nil {
			if x, err := explain.Explain(c.From, c.To, c.PortProtocol()); err == nil {
				m.Explanation = x.String()
				m.ImplementationDefined = x.ImplementationDefined
			}
		}
		if len(m.ImplementationDefined) > 0 {
			step.ImplementationDefinedWrong++
		}
		if len(step.Mismatches) < MaxMismatches {
			step.Mismatches = append(step.Mismatches, m)
		}
	}
	return step
}

func convergence(times []float64) Convergence {
	if len(times) == 0 {
		return Convergence{}
	}
	sort.Float64s(times)
	at := func(q float64) float64 { return times[min(len(times)-1, int(q*float64(len(times))))] }
	return Convergence{P50: at(0.5), P99: at(0.99), Max: times[len(times)-1]}
}

// SnapshotOf copies two tables of the same shape into a Snapshot.
func SnapshotOf(expected, observed *matrix.Table) *Snapshot {
	s := &Snapshot{Endpoints: expected.Endpoints()}
	n := len(s.Endpoints)
	for _, pp := range expected.Ports() {
		s.Ports = append(s.Ports, pp.String())
		exp, obs := make([]byte, n*n), make([]byte, n*n)
		for f, from := range s.Endpoints {
			for d, to := range s.Endpoints {
				exp[f*n+d], obs[f*n+d] = '-', '-'
				want, ok := expected.Get(from, to, pp)
				if !ok {
					continue
				}
				exp[f*n+d] = symbol(want)
				obs[f*n+d] = '?'
				if got, ok := observed.Get(from, to, pp); ok {
					obs[f*n+d] = symbol(got)
				}
			}
		}
		s.Expected = append(s.Expected, string(exp))
		s.Observed = append(s.Observed, string(obs))
	}
	return s
}

func symbol(allowed bool) byte {
	if allowed {
		return '.'
	}
	return 'X'
}

// Write writes the run as indented JSON, with the current schema version
// and the summary of its times to enforce.
func (r *Run) Write(path string) error {
	r.SchemaVersion = SchemaVersion
	r.TimeToEnforce = EnforceTimesOf(r.Cases)
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding results: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing results: %w", err)
	}
	return nil
}

// ReadRun reads a results.json file, or one compressed with gzip (as the
// committed snapshots in docs/results are).
func ReadRun(path string) (*Run, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Run
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%s: not a netpolcheck results file: %w", path, err)
	}
	if r.SchemaVersion != SchemaVersion {
		return nil, fmt.Errorf("%s: results schema version %d, this netpolcheck reads %d", path, r.SchemaVersion, SchemaVersion)
	}
	return &r, nil
}

// ReadFile reads a report file (results.json, a JUnit XML file), which may
// be compressed with gzip: its content, uncompressed.
func ReadFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading a report file: %w", err)
	}
	if !isGzip(data) {
		return data, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err == nil {
		data, err = io.ReadAll(zr)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, nil
}

// isGzip reports whether data starts with gzip's magic number.
func isGzip(data []byte) bool { return len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b }
