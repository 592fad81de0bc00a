// Package progress is the stream of finished cases a run's suites append to
// (one JSON line per case, from every parallel process) and the progress
// line `netpolcheck run` makes of it: cases done of the total, passed,
// failed, and the estimated time left.
package progress

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"
)

// EnvFile names the file the suites append their events to; unset, they
// write none.
const EnvFile = "NETPOLCHECK_PROGRESS"

// Event is one finished case.
type Event struct {
	Suite string `json:"suite"`
	Case  string `json:"case"`
	// State is Ginkgo's: passed, failed, skipped, pending, interrupted,
	// aborted, panicked, timedout.
	State   string  `json:"state"`
	Seconds float64 `json:"seconds"`
}

// Append adds an event to the stream at path with one write (appends of a
// line this short are not interleaved with other processes' appends).
func Append(path string, e Event) error {
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encoding a progress event: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("opening the progress stream: %w", err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("writing the progress stream: %w", err)
	}
	return f.Close()
}

// Reader reads the events appended to a stream since its last call.
type Reader struct {
	r       io.Reader
	partial []byte
}

// NewReader reads the stream r (a file being appended to).
func NewReader(r io.Reader) *Reader { return &Reader{r: r} }

// Next returns the complete events written since the last call; a line not
// yet complete waits for the next call.
func (r *Reader) Next() ([]Event, error) {
	data, err := io.ReadAll(r.r)
	if err != nil {
		return nil, fmt.Errorf("reading the progress stream: %w", err)
	}
	r.partial = append(r.partial, data...)
	var events []Event
	for {
		i := bytes.IndexByte(r.partial, '\n')
		if i < 0 {
			return events, nil
		}
		line := r.partial[:i]
		r.partial = r.partial[i+1:]
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			return events, fmt.Errorf("progress stream line %q: %w", line, err)
		}
		events = append(events, e)
	}
}

// Tracker counts the finished cases of a run of Total cases started at
// Started.
type Tracker struct {
	Total   int
	Started time.Time
	Done    int
	Passed  int
	Failed  int
	Skipped int
}

// Add counts an event: skipped and pending cases as skipped, every state
// but passed and those as failed.
func (t *Tracker) Add(e Event) {
	t.Done++
	switch e.State {
	case "passed":
		t.Passed++
	case "skipped", "pending":
		t.Skipped++
	default:
		t.Failed++
	}
}

// Line is the progress line at now: "41/414 cases, 40 passed, 1 failed, ETA
// 6m20s" (the ETA from the mean time per case so far; "ETA -" before the
// first case).
func (t *Tracker) Line(now time.Time) string {
	line := fmt.Sprintf("%d/%d cases, %d passed, %d failed", t.Done, t.Total, t.Passed, t.Failed)
	if t.Skipped > 0 {
		line += fmt.Sprintf(", %d skipped", t.Skipped)
	}
	return line + ", ETA " + t.eta(now)
}

func (t *Tracker) eta(now time.Time) string {
	left := t.Total - t.Done
	switch {
	case left <= 0:
		return "0s"
	case t.Done == 0:
		return "-"
	}
	per := now.Sub(t.Started) / time.Duration(t.Done)
	return (per * time.Duration(left)).Round(time.Second).String()
}
