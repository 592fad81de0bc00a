package matrix

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// Table is a truth table: for every source, destination and port/protocol the
// destination serves, whether the connection is allowed. Rows are sources,
// columns are destinations, one grid per port/protocol. Cells for a port the
// destination does not serve, or (in an observed table) never probed, are
// absent. It is dense: a million-cell table takes a few hundred kilobytes.
type Table struct {
	names     []string
	index     map[string]int
	ports     []PortProtocol
	portIndex map[PortProtocol]int
	// present[p] and allowed[p] hold bit from*n+to for every present and
	// every allowed cell of port p.
	present []bitset
	allowed []bitset
}

// Cell is one entry of a truth table.
type Cell struct {
	From     string          `json:"from"`
	To       string          `json:"to"`
	Port     int32           `json:"port"`
	Protocol corev1.Protocol `json:"protocol"`
	Allowed  bool            `json:"allowed"`
}

// PortProtocol returns the cell's port/protocol.
func (c Cell) PortProtocol() PortProtocol { return PortProtocol{Port: c.Port, Protocol: c.Protocol} }

func (c Cell) String() string {
	return fmt.Sprintf("%s -> %s %d/%s", c.From, c.To, c.Port, c.Protocol)
}

// NewTable returns an empty table (no cell present) over the given endpoint
// names and port/protocols.
func NewTable(endpoints []string, ports []PortProtocol) *Table {
	n := len(endpoints)
	t := &Table{
		names:     append([]string(nil), endpoints...),
		index:     make(map[string]int, n),
		ports:     append([]PortProtocol(nil), ports...),
		portIndex: make(map[PortProtocol]int, len(ports)),
		present:   make([]bitset, len(ports)),
		allowed:   make([]bitset, len(ports)),
	}
	for i, name := range t.names {
		t.index[name] = i
	}
	for i, pp := range t.ports {
		t.portIndex[pp] = i
		t.present[i] = newBitset(n * n)
		t.allowed[i] = newBitset(n * n)
	}
	return t
}

// Endpoints returns the row and column names, in order.
func (t *Table) Endpoints() []string { return t.names }

// Ports returns the port/protocols of the table, in order.
func (t *Table) Ports() []PortProtocol { return t.ports }

// Set records a cell as present, allowed or not.
func (t *Table) Set(from, to string, pp PortProtocol, allowed bool) error {
	f, d, p, err := t.locate(from, to, pp)
	if err != nil {
		return err
	}
	t.set(f, d, p, allowed)
	return nil
}

func (t *Table) set(from, to, p int, allowed bool) {
	bit := from*len(t.names) + to
	t.present[p].set(bit)
	if allowed {
		t.allowed[p].set(bit)
	} else {
		t.allowed[p][bit/64] &^= 1 << (bit % 64)
	}
}

// Get returns the verdict of a cell, and ok=false when the cell is absent.
func (t *Table) Get(from, to string, pp PortProtocol) (allowed, ok bool) {
	f, d, p, err := t.locate(from, to, pp)
	bit := f*len(t.names) + d
	if err != nil || !t.present[p].has(bit) {
		return false, false
	}
	return t.allowed[p].has(bit), true
}

// Allowed is Get under the name the engine's callers read best.
func (t *Table) Allowed(from, to string, pp PortProtocol) (allowed, ok bool) {
	return t.Get(from, to, pp)
}

func (t *Table) locate(from, to string, pp PortProtocol) (int, int, int, error) {
	f, ok := t.index[from]
	if !ok {
		return 0, 0, 0, fmt.Errorf("unknown source %q", from)
	}
	d, ok := t.index[to]
	if !ok {
		return 0, 0, 0, fmt.Errorf("unknown destination %q", to)
	}
	p, ok := t.portIndex[pp]
	if !ok {
		return 0, 0, 0, fmt.Errorf("unknown port/protocol %s", pp)
	}
	return f, d, p, nil
}

// Each calls fn for every present cell, port/protocol by port/protocol, then
// source by source, then destination by destination, until fn returns false.
func (t *Table) Each(fn func(Cell) bool) {
	n := len(t.names)
	for p, pp := range t.ports {
		for f := range n {
			for d := range n {
				if !t.present[p].has(f*n + d) {
					continue
				}
				c := Cell{From: t.names[f], To: t.names[d], Port: pp.Port, Protocol: pp.Protocol, Allowed: t.allowed[p].has(f*n + d)}
				if !fn(c) {
					return
				}
			}
		}
	}
}

// Cells returns every present cell in the order of Each.
func (t *Table) Cells() []Cell {
	var out []Cell
	t.Each(func(c Cell) bool { out = append(out, c); return true })
	return out
}

// Count returns the number of present cells and of allowed ones.
func (t *Table) Count() (cells, allowed int) {
	for p := range t.ports {
		cells += t.present[p].count()
		allowed += t.allowed[p].count()
	}
	return cells, allowed
}

// Mismatch is a cell where two tables disagree.
type Mismatch struct {
	Cell
	// Expected and Observed are the two verdicts; Missing marks a cell the
	// expected table has but the observed one lacks (never probed).
	Expected bool `json:"expected"`
	Observed bool `json:"observed"`
	Missing  bool `json:"missing,omitempty"`
}

// Diff returns every cell of expected that observed gets wrong or lacks, in
// the order of Each. The tables must share endpoints and ports.
func Diff(expected, observed *Table) ([]Mismatch, error) {
	if err := sameShape(expected, observed); err != nil {
		return nil, err
	}
	n := len(expected.names)
	var out []Mismatch
	for p := range expected.ports {
		for f := range n {
			for d := range n {
				bit := f*n + d
				if !expected.present[p].has(bit) {
					continue
				}
				want := expected.allowed[p].has(bit)
				got := observed.allowed[p].has(bit)
				missing := !observed.present[p].has(bit)
				if want == got && !missing {
					continue
				}
				pp := expected.ports[p]
				out = append(out, Mismatch{
					Cell:     Cell{From: expected.names[f], To: expected.names[d], Port: pp.Port, Protocol: pp.Protocol, Allowed: want},
					Expected: want, Observed: got, Missing: missing,
				})
			}
		}
	}
	return out, nil
}

func sameShape(a, b *Table) error {
	if len(a.names) != len(b.names) || len(a.ports) != len(b.ports) {
		return fmt.Errorf("tables differ in shape: %d endpoints x %d ports vs %d x %d", len(a.names), len(a.ports), len(b.names), len(b.ports))
	}
	for i := range a.names {
		if a.names[i] != b.names[i] {
			return fmt.Errorf("tables differ at endpoint %d: %q vs %q", i, a.names[i], b.names[i])
		}
	}
	for i := range a.ports {
		if a.ports[i] != b.ports[i] {
			return fmt.Errorf("tables differ at port %d: %s vs %s", i, a.ports[i], b.ports[i])
		}
	}
	return nil
}
