package reports

import (
	"fmt"
	"slices"
	"time"
)

// EnforcedAfter returns, for a step every cell of which agreed, the time
// from the step's start (when its policies and labels were applied) to the
// start of the first probing round in which every cell agreed: setup is
// the time from the step's start to its first probing round, and the rest
// is the slowest cell's convergence. It returns nil when a cell never
// agreed.
func EnforcedAfter(step Step, setup time.Duration) *float64 {
	if step.Wrong > 0 {
		return nil
	}
	s := setup.Seconds() + step.Convergence.Max
	return &s
}

// TimeToEnforce returns the case's time to enforce: over its steps, the
// longest time from a step's start to the first round in which its every
// cell agreed. ok is false when a step never agreed, or the case has no
// step that recorded the time (a skipped case, or results written before
// the time was recorded).
func (c Case) TimeToEnforce() (seconds float64, ok bool) {
	if len(c.Steps) == 0 {
		return 0, false
	}
	for _, s := range c.Steps {
		if s.EnforcedAfterSeconds == nil {
			return 0, false
		}
		seconds = max(seconds, *s.EnforcedAfterSeconds)
	}
	return seconds, true
}

// EnforceTimes summarises a run's times to enforce (see Case.TimeToEnforce)
// in seconds.
type EnforceTimes struct {
	P50 float64 `json:"p50Seconds"`
	P90 float64 `json:"p90Seconds"`
	P99 float64 `json:"p99Seconds"`
	// Cases counts the cases with a time; NotEnforced those that ran a step
	// in which some cell never agreed within the convergence window.
	Cases       int `json:"cases"`
	NotEnforced int `json:"notEnforced"`
}

// EnforceTimesOf summarises the cases' times to enforce; nil when no case
// recorded one.
func EnforceTimesOf(cases []Case) *EnforceTimes {
	var times []float64
	notEnforced := 0
	for _, c := range cases {
		if t, ok := c.TimeToEnforce(); ok {
			times = append(times, t)
		} else if slices.ContainsFunc(c.Steps, func(s Step) bool { return s.EnforcedAfterSeconds == nil && s.Wrong > 0 }) {
			notEnforced++
		}
	}
	if len(times) == 0 {
		return nil
	}
	slices.Sort(times)
	at := func(q float64) float64 { return times[min(len(times)-1, int(q*float64(len(times))))] }
	return &EnforceTimes{P50: at(0.5), P90: at(0.9), P99: at(0.99), Cases: len(times), NotEnforced: notEnforced}
}

// String renders the times on one line.
func (e *EnforceTimes) String() string {
	if e == nil {
		return "not recorded"
	}
	return fmt.Sprintf("p50 %s, p90 %s, p99 %s over %d cases; %d never agreed", enforceSeconds(e.P50), enforceSeconds(e.P90),
		enforceSeconds(e.P99), e.Cases, e.NotEnforced)
}

// enforceNote says what the time to enforce is, wherever it is shown.
const enforceNote = "Time to enforce: per case, the longest over its steps of the time from applying the step's policies " +
	"and labels to the start of the first probing round in which every cell agreed; percentiles over the cases in which " +
	"every step agreed."

// enforcePercentiles renders the percentiles for a table cell: "-" when
// none were recorded.
func enforcePercentiles(e *EnforceTimes) string {
	if e == nil {
		return "-"
	}
	return fmt.Sprintf("%s / %s / %s", enforceSeconds(e.P50), enforceSeconds(e.P90), enforceSeconds(e.P99))
}

// enforceSeconds renders a time to enforce to a tenth of a second (to the
// millisecond under one).
func enforceSeconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}
