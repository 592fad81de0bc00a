package transport_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"github.com/netpolcheck/netpolcheck/internal/netns"
	"github.com/netpolcheck/netpolcheck/internal/netns/netnstest"
	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/probes/internal/netlab"
	"github.com/netpolcheck/netpolcheck/probes/transport"
)

// upstreamPods is the upstream netpol e2e model: pods a, b, c in x, y, z.
var upstreamPods = []string{"x/a", "x/b", "x/c", "y/a", "y/b", "y/c", "z/a", "z/b", "z/c"}

// deniedPlan is the upstream matrix: ports 80 and 81 on TCP, UDP and SCTP
// (IPv4), probe timeout 1 s: 9 x 9 pairs x 6 = 486 probes.
var deniedPlan = matrixPlan{timeout: time.Second, families: []func(*netlab.Node) netip.Addr{ipv4}, ports: servedPorts}

// BenchmarkDeniedMatrix measures the full upstream-sized matrix with every
// packet dropped by nftables, so every probe costs its whole timeout:
//
//   - batched: the local netns transport, one `netpolcheck-probe batch`
//     process per source, all nine sources at once (metric s/matrix);
//   - sequential-row: one `netpolcheck-probe connect` process per probe, one
//     after another, for the 54 probes of source x/a; s/matrix extrapolates
//     linearly to the 486 probes (9 rows).
//
// Run: go test -run '^$' -bench DeniedMatrix -benchtime 1x ./probes/transport/
func BenchmarkDeniedMatrix(b *testing.B) {
	netnstest.RequireRoot(b)
	lab := netlab.New(b, upstreamPods...)
	for _, pod := range upstreamPods {
		lab.Serve(probeBinary, pod, pod, "--port", "80,81/TCP,UDP,SCTP")
	}
	lab.DropAll()
	targets := deniedPlan.targets(lab, upstreamPods)

	b.Run("batched", func(b *testing.B) {
		tr := &transport.LocalNetns{Binary: probeBinary, NetnsPath: lab.NetnsPath}
		var worst time.Duration
		for b.Loop() {
			obs, wall := runMatrix(b, lab, tr, upstreamPods, upstreamPods, deniedPlan)
			expect(b, obs, func(observation) (matrix.Outcome, string) { return matrix.Timeout, "" })
			if len(obs) != len(upstreamPods)*len(targets) {
				b.Fatalf("%d results, want %d", len(obs), len(upstreamPods)*len(targets))
			}
			worst = max(worst, wall)
		}
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/matrix")
		b.ReportMetric(worst.Seconds(), "worst-s/matrix")
		b.ReportMetric(float64(len(upstreamPods)*len(targets)), "probes/matrix")
	})

	b.Run("sequential-row", func(b *testing.B) {
		path, err := lab.NetnsPath(lab.Endpoint("x/a"))
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			for _, tg := range targets {
				r := connectOnce(b, path, tg, deniedPlan.timeout)
				if r.Outcome != matrix.Timeout {
					b.Errorf("x/a -> %s: %s (%s), want timeout", tg, r.Outcome, r.Detail)
				}
			}
		}
		row := b.Elapsed().Seconds() / float64(b.N)
		b.ReportMetric(row, "s/row")
		b.ReportMetric(row*float64(len(upstreamPods)), "s/matrix")
		b.ReportMetric(float64(len(targets)), "probes/row")
	})
}

// connectOnce runs one `netpolcheck-probe connect` in the namespace at path.
func connectOnce(b *testing.B, path string, tg target, timeout time.Duration) matrix.Result {
	b.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(probeBinary, "connect", "--host", tg.addr.String(), "--port", fmt.Sprint(tg.port),
		"--protocol", string(tg.protocol), "--expect", tg.dst, "--timeout", timeout.String())
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := netns.Start(path, cmd); err != nil {
		b.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		b.Fatalf("connect %s: %v: %s", tg, err, stderr.String())
	}
	var r matrix.Result
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		b.Fatalf("connect %s printed %q: %v", tg, stdout.String(), err)
	}
	return r
}
