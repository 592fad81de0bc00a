package transport_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/netpolcheck/netpolcheck/internal/netns/netnstest"
	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/probes/internal/netlab"
)

// A CNI that rejects (here the router, with ICMP administratively
// prohibited) passes the runner with real sockets, while a refusal from a
// port whose server does not listen (y/b serves 80 only, the table says 81
// too) is a probe error, not a denied verdict.
func TestRunnerTellsRejectionsFromServersNotListening(t *testing.T) {
	netnstest.RequireRoot(t)
	lab := netlab.New(t, "x/a", "y/b")
	lab.Serve(probeBinary, "y/b", "y/b", "--port", "80/TCP,UDP,SCTP")
	lab.Nft(lab.Router, netlab.Ruleset("forward", "accept", "reject with icmpx admin-prohibited"))
	var ports []matrix.PortProtocol
	for _, proto := range protocols {
		for _, port := range servedPorts {
			ports = append(ports, matrix.PortProtocol{Port: port, Protocol: proto})
		}
	}
	endpoints := []matrix.Endpoint{lab.Endpoint("x/a"), lab.Endpoint("y/b")}
	table := matrix.NewTable([]string{"x/a", "y/b"}, ports)
	for _, pp := range ports {
		for from, allowed := range map[string]bool{"x/a": false, "y/b": true} {
			if err := table.Set(from, "y/b", pp, allowed); err != nil {
				t.Fatal(err)
			}
		}
	}
	runner := &matrix.Runner{Transport: localTransport(lab), ProbeTimeout: time.Second, Convergence: time.Second, RetryInterval: 100 * time.Millisecond}
	rep, err := runner.Run(context.Background(), table, endpoints)
	if err != nil {
		t.Fatal(err)
	}
	failed := map[matrix.Cell]bool{}
	for _, c := range rep.Failures() {
		failed[c.Cell] = true
	}
	for _, c := range rep.Cells {
		switch {
		case c.Port == 80 && c.From == "x/a":
			if failed[c.Cell] || c.Last.Outcome != matrix.Refused || !c.Converged {
				t.Errorf("%s: %s (%s); want a rejection taken as denied", c.Cell, c.Last.Outcome, c.Last.Detail)
			}
		case c.Port == 80:
			if failed[c.Cell] || c.Last.Outcome != matrix.Connected {
				t.Errorf("%s: %s (%s); want connected", c.Cell, c.Last.Outcome, c.Last.Detail)
			}
		default:
			if !failed[c.Cell] || c.Last.Outcome != matrix.Error || !strings.Contains(c.Last.Detail, "it is not listening") {
				t.Errorf("%s: %s (%s); want a probe error: nothing listens", c.Cell, c.Last.Outcome, c.Last.Detail)
			}
		}
	}
}
