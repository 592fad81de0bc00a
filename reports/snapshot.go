package reports

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/netpolcheck/netpolcheck/matrix"
)

// CellKind classifies a cell of a Snapshot: the HTML page's script draws
// each kind with the symbol and class its legend gives (see cellLegend).
type CellKind string

// The kinds of cell in a truth-table grid.
const (
	// CellAllowed: allowed, as expected.
	CellAllowed CellKind = "allowed"
	// CellDenied: denied, as expected.
	CellDenied CellKind = "denied"
	// CellWrong: observed differs from expected.
	CellWrong CellKind = "wrong"
	// CellNotProbed: expected, but never observed.
	CellNotProbed CellKind = "not-probed"
	// CellAbsent: no cell (the destination does not serve the port).
	CellAbsent CellKind = "absent"
)

// Validate checks that the snapshot's grids match its endpoints and ports,
// so that Cell cannot index out of range.
func (s *Snapshot) Validate() error {
	if len(s.Expected) != len(s.Ports) || len(s.Observed) != len(s.Ports) {
		return fmt.Errorf("snapshot has %d ports but %d expected and %d observed grids", len(s.Ports), len(s.Expected), len(s.Observed))
	}
	cells := len(s.Endpoints) * len(s.Endpoints)
	for p, port := range s.Ports {
		if len(s.Expected[p]) != cells || len(s.Observed[p]) != cells {
			return fmt.Errorf("snapshot port %s: grids of %d and %d symbols, want %d (%d endpoints squared)",
				port, len(s.Expected[p]), len(s.Observed[p]), cells, len(s.Endpoints))
		}
	}
	return nil
}

// Tables rebuilds the expected and observed truth tables of the snapshot.
func (s *Snapshot) Tables() (expected, observed *matrix.Table, err error) {
	if err := s.Validate(); err != nil {
		return nil, nil, err
	}
	ports := make([]matrix.PortProtocol, len(s.Ports))
	for i, p := range s.Ports {
		if ports[i], err = parsePortProtocol(p); err != nil {
			return nil, nil, err
		}
	}
	expected, observed = matrix.NewTable(s.Endpoints, ports), matrix.NewTable(s.Endpoints, ports)
	for p, pp := range ports {
		for f, from := range s.Endpoints {
			for d, to := range s.Endpoints {
				exp, obs := s.Cell(p, f, d)
				if err := setSymbol(expected, from, to, pp, exp); err != nil {
					return nil, nil, err
				}
				if err := setSymbol(observed, from, to, pp, obs); err != nil {
					return nil, nil, err
				}
			}
		}
	}
	return expected, observed, nil
}

// DiffGrids renders, for every port with wrong or unobserved cells, the
// expected, observed and diff grids, as matrix.Comparison does. It returns ""
// when observed agrees with expected.
func (s *Snapshot) DiffGrids() (string, error) {
	expected, observed, err := s.Tables()
	if err != nil {
		return "", err
	}
	return matrix.Comparison(expected, observed)
}

// setSymbol records a snapshot symbol in a table: '.' and 'X' are present
// cells, '-' and '?' absent ones.
func setSymbol(t *matrix.Table, from, to string, pp matrix.PortProtocol, symbol byte) error {
	switch symbol {
	case '.', 'X':
		return t.Set(from, to, pp, symbol == '.')
	case '-', '?':
		return nil
	default:
		return fmt.Errorf("snapshot cell %s -> %s %s: unknown symbol %q", from, to, pp, symbol)
	}
}

// parsePortProtocol parses "80/TCP".
func parsePortProtocol(s string) (matrix.PortProtocol, error) {
	port, protocol, ok := strings.Cut(s, "/")
	n, err := strconv.ParseInt(port, 10, 32)
	if !ok || err != nil || protocol == "" {
		return matrix.PortProtocol{}, fmt.Errorf("snapshot port %q: want PORT/PROTOCOL", s)
	}
	return matrix.PortProtocol{Port: int32(n), Protocol: corev1.Protocol(protocol)}, nil
}
