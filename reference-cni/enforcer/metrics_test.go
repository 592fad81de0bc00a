package enforcer

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer/nft"
)

func TestMetricsExposition(t *testing.T) {
	m := NewMetrics()
	m.observe(Commit{Programmed: nft.Result{Full: true, Added: 7, Sets: map[string]int{"ingress-ports-ip4": 5}}, Total: 30 * time.Millisecond}, false)
	m.observe(Commit{Programmed: nft.Result{Added: 1, Removed: 2}, Total: 3 * time.Millisecond, Events: 2, EventLatency: 7 * time.Millisecond}, true)
	m.observeError()
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`netpolcheck_enforcer_syncs_total{kind="full"} 1`,
		`netpolcheck_enforcer_syncs_total{kind="incremental"} 1`,
		"netpolcheck_enforcer_sync_errors_total 1",
		"netpolcheck_enforcer_compile_problems 1",
		"netpolcheck_enforcer_elements_added_total 8",
		"netpolcheck_enforcer_elements_removed_total 2",
		`netpolcheck_enforcer_sync_duration_seconds_bucket{le="0.005"} 1`,
		`netpolcheck_enforcer_sync_duration_seconds_bucket{le="0.05"} 2`,
		"netpolcheck_enforcer_sync_duration_seconds_count 2",
		`netpolcheck_enforcer_event_to_commit_seconds_bucket{le="0.01"} 1`,
		"netpolcheck_enforcer_event_to_commit_seconds_count 1",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	if !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Errorf("content type %q", rec.Header().Get("Content-Type"))
	}
}
