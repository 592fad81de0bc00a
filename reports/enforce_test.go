package reports

import (
	"strings"
	"testing"
	"time"
)

func after(s float64) *float64 { return &s }

func TestEnforcedAfter(t *testing.T) {
	agreed := Step{Cells: 10, Convergence: Convergence{Max: 1.5}}
	if got := EnforcedAfter(agreed, 500*time.Millisecond); got == nil || *got != 2 {
		t.Errorf("a step whose slowest cell agreed after 1.5 s, probed 0.5 s after its start: %v, want 2 s", got)
	}
	if got := EnforcedAfter(Step{Cells: 10, Wrong: 1, Convergence: Convergence{Max: 1}}, time.Second); got != nil {
		t.Errorf("a step with a wrong cell: %v, want nil (never enforced)", *got)
	}
}

func TestCaseTimeToEnforce(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []Step
		want  float64
		ok    bool
	}{
		{"no steps (a skipped case)", nil, 0, false},
		{"one step", []Step{{EnforcedAfterSeconds: after(1.25)}}, 1.25, true},
		{"the slowest step", []Step{{EnforcedAfterSeconds: after(0.5)}, {EnforcedAfterSeconds: after(3)}, {EnforcedAfterSeconds: after(1)}}, 3, true},
		{"a step that never agreed", []Step{{EnforcedAfterSeconds: after(0.5)}, {Wrong: 2}}, 0, false},
		{"results written before the time was recorded", []Step{{Cells: 4}}, 0, false},
	} {
		got, ok := Case{Steps: tc.steps}.TimeToEnforce()
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestEnforceTimesOf(t *testing.T) {
	if got := EnforceTimesOf([]Case{{Steps: []Step{{Cells: 3}}}}); got != nil {
		t.Errorf("no case recorded a time: %+v, want nil", got)
	}
	var cases []Case
	for i := 1; i <= 100; i++ {
		cases = append(cases, Case{Steps: []Step{{EnforcedAfterSeconds: after(float64(i) / 10)}}})
	}
	cases = append(cases, Case{Steps: []Step{{Wrong: 1}}}, Case{State: Skipped})
	got := EnforceTimesOf(cases)
	want := EnforceTimes{P50: 5.1, P90: 9.1, P99: 10, Cases: 100, NotEnforced: 1}
	if got == nil || *got != want {
		t.Fatalf("%+v, want %+v", got, want)
	}
	if s := got.String(); s != "p50 5.1s, p90 9.1s, p99 10s over 100 cases; 1 never agreed" {
		t.Errorf("String: %q", s)
	}
	run := &Run{Name: "x", Cases: cases}
	if s := Summary(run); !strings.Contains(s, "Time to enforce: p50 5.1s, p90 9.1s, p99 10s over 100 cases; 1 never agreed.") {
		t.Errorf("the summary lacks the time to enforce:\n%s", s)
	}
	md := Compare([]*Run{run}).Markdown()
	if !strings.Contains(md, "| 5.1s / 9.1s / 10s |") {
		t.Errorf("the comparison lacks the time to enforce:\n%s", md[:min(len(md), 800)])
	}
	page, err := Compare([]*Run{run}).HTML()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page, `<td class="num time-to-enforce">5.1s / 9.1s / 10s</td>`) {
		t.Error("the HTML comparison lacks the time to enforce")
	}
}
