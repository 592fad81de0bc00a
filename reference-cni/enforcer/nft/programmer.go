// Package nft programs a compiler.Ruleset into the node's nftables table
// "netpolcheck" (family inet), through sigs.k8s.io/knftables: a few fixed
// chains on the forward hook, and sets that hold all verdict data. Every sync
// is one nftables transaction, which the kernel applies atomically. The first
// sync (and the first after an error) replaces the contents of every set and
// chain without deleting the table, so rules left by a previous run keep
// enforcing until the new ones take over; later syncs send only the elements
// that changed.
package nft

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/netpolcheck/netpolcheck/internal/netns"
	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer/compiler"
)

// New returns a knftables interface for the enforcer's table in the current
// network namespace.
func New() (knftables.Interface, error) {
	nft, err := knftables.New(knftables.InetFamily, TableName)
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return nft, nil
}

// NewInNetns returns a knftables interface whose every nft command runs in the
// network namespace at path (such as /run/netns/npc-node1), while the rest of
// the process stays where it is.
func NewInNetns(path string) (knftables.Interface, error) {
	var nft knftables.Interface
	err := netns.Do(path, func() error {
		var err error
		nft, err = New()
		return err
	})
	if err != nil {
		return nil, err
	}
	return &netnsInterface{inner: nft, path: path}, nil
}

// Programmer keeps the table equal to the last ruleset it was given. It is
// not safe for concurrent use.
type Programmer struct {
	nft knftables.Interface
	// current is what the kernel holds; nil when unknown (before the first
	// sync, or after a failed one), which makes the next sync a full one.
	current *compiler.Ruleset
}

// NewProgrammer returns a programmer for the table behind nft, whose next
// sync is a full one.
func NewProgrammer(nft knftables.Interface) *Programmer {
	return &Programmer{nft: nft}
}

// Result says what one sync did.
type Result struct {
	// Full is set when the sync replaced the whole table contents.
	Full bool
	// Added and Removed count the set elements the transaction added and
	// deleted (for a full sync, Added is every element and Removed is 0).
	Added, Removed int
	// Sets holds the number of elements of every set after the sync.
	Sets map[string]int
	// Elements is the total of Sets.
	Elements int
	// Duration is the time nft took to apply the transaction.
	Duration time.Duration
}

// Sync makes the table hold desired, in one transaction. On failure nothing
// changed in the kernel, and the next sync is a full one.
func (p *Programmer) Sync(ctx context.Context, desired *compiler.Ruleset) (Result, error) {
	tx := p.nft.NewTransaction()
	res := Result{Full: p.current == nil}
	if res.Full {
		res.Added = fullTransaction(tx, desired)
	} else {
		res.Added, res.Removed = diffTransaction(tx, p.current, desired)
	}
	res.Sets = setSizes(desired)
	for _, n := range res.Sets {
		res.Elements += n
	}
	if tx.NumOperations() == 0 {
		return res, nil
	}
	start := time.Now()
	err := p.nft.Run(ctx, tx)
	res.Duration = time.Since(start)
	if err != nil {
		p.current = nil
		return res, fmt.Errorf("applying nftables transaction (%d operations, full=%v): %w", tx.NumOperations(), res.Full, err)
	}
	p.current = desired
	return res, nil
}

// Reset forgets what the kernel holds, so that the next sync rewrites the
// whole table: a resync, which repairs whatever was changed from outside.
func (p *Programmer) Reset() { p.current = nil }

// Uninstall deletes the enforcer's table, if there is one: every pod of the
// node is then open again.
func Uninstall(ctx context.Context, nft knftables.Interface) error {
	tx := nft.NewTransaction()
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	if err := nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("deleting table inet %s: %w", TableName, err)
	}
	return nil
}

// fullTransaction creates what is missing and replaces every chain and set
// content. It returns the number of elements added.
func fullTransaction(tx *knftables.Transaction, desired *compiler.Ruleset) int {
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("netpolcheck reference NetworkPolicy enforcer")})
	sets, chains, rules := objects()
	for _, s := range sets {
		tx.Add(s)
		tx.Flush(s)
	}
	for _, c := range chains {
		tx.Add(c)
		tx.Flush(c)
	}
	for _, r := range rules {
		tx.Add(r)
	}
	added := 0
	for d, rows := range desired.Directions {
		dir := compiler.Direction(d)
		for local, row := range rows {
			tx.Add(isolatedElement(dir, local))
			for _, e := range rowElements(dir, local, row.AnyPort, row.Ports, row.Ranges) {
				tx.Add(e)
			}
			added += 1 + row.Len()
		}
	}
	return added
}

// diffTransaction deletes the elements of current that desired lacks, then
// adds those current lacks, comparing row by row. Deleting first keeps the
// interval sets free of overlaps at every step.
func diffTransaction(tx *knftables.Transaction, current, desired *compiler.Ruleset) (added, removed int) {
	empty := &compiler.Row{}
	type change struct {
		dir      compiler.Direction
		local    netip.Addr
		old, new *compiler.Row
	}
	var changes []change
	for d := range desired.Directions {
		dir := compiler.Direction(d)
		cur, want := current.Directions[d], desired.Directions[d]
		for local, old := range cur {
			if row, ok := want[local]; !ok {
				changes = append(changes, change{dir, local, old, nil})
			} else if !old.Equal(row) {
				changes = append(changes, change{dir, local, old, row})
			}
		}
		for local, row := range want {
			if _, ok := cur[local]; !ok {
				changes = append(changes, change{dir, local, nil, row})
			}
		}
	}
	// Each row's diff is computed once: its deletions all go first, then
	// every addition.
	type rowDiff struct {
		change
		anyGone, anyFresh       []netip.Addr
		portsGone, portsFresh   []compiler.PortEntry
		rangesGone, rangesFresh []compiler.Rectangle
	}
	diffs := make([]rowDiff, len(changes))
	for i, c := range changes {
		old, new := c.old, c.new
		if old == nil {
			old = empty
		}
		if new == nil {
			new = empty
		}
		d := rowDiff{change: c}
		d.anyGone, d.anyFresh = diffSorted(old.AnyPort, new.AnyPort, netip.Addr.Compare)
		d.portsGone, d.portsFresh = diffSorted(old.Ports, new.Ports, compiler.PortEntry.Compare)
		d.rangesGone, d.rangesFresh = diffSorted(old.Ranges, new.Ranges, compiler.Rectangle.Compare)
		diffs[i] = d
	}
	for _, d := range diffs {
		if d.old == nil {
			continue
		}
		if d.new == nil {
			tx.Delete(isolatedElement(d.dir, d.local))
			removed++
		}
		gone := rowElements(d.dir, d.local, d.anyGone, d.portsGone, d.rangesGone)
		for _, e := range gone {
			tx.Delete(e)
		}
		removed += len(gone)
	}
	for _, d := range diffs {
		if d.new == nil {
			continue
		}
		if d.old == nil {
			tx.Add(isolatedElement(d.dir, d.local))
			added++
		}
		fresh := rowElements(d.dir, d.local, d.anyFresh, d.portsFresh, d.rangesFresh)
		for _, e := range fresh {
			tx.Add(e)
		}
		added += len(fresh)
	}
	return added, removed
}

// rowElements returns the set elements of a local address's entries in a
// direction (not its isolated element), for a transaction to add or delete.
func rowElements(dir compiler.Direction, local netip.Addr, anyPort []netip.Addr, ports []compiler.PortEntry, ranges []compiler.Rectangle) []*knftables.Element {
	out := make([]*knftables.Element, 0, len(anyPort)+len(ports)+len(ranges))
	for _, remote := range anyPort {
		out = append(out, anyPortElement(dir, local, remote))
	}
	for _, p := range ports {
		out = append(out, portElement(dir, local, p))
	}
	for _, r := range ranges {
		out = append(out, rangeElement(dir, local, r))
	}
	return out
}

// diffSorted compares two sorted lists: gone are in old only, fresh in new
// only.
func diffSorted[T any](old, new []T, compare func(T, T) int) (gone, fresh []T) {
	i, j := 0, 0
	for i < len(old) && j < len(new) {
		switch c := compare(old[i], new[j]); {
		case c == 0:
			i++
			j++
		case c < 0:
			gone = append(gone, old[i])
			i++
		default:
			fresh = append(fresh, new[j])
			j++
		}
	}
	return append(gone, old[i:]...), append(fresh, new[j:]...)
}

func familyOf(ip netip.Addr) family { return families()[familyIndex(ip.Is4())] }

func isolatedElement(dir compiler.Direction, local netip.Addr) *knftables.Element {
	return &knftables.Element{Set: setName(dir, isolated, familyOf(local)), Key: []string{local.String()}}
}

func anyPortElement(dir compiler.Direction, local, remote netip.Addr) *knftables.Element {
	return &knftables.Element{Set: setName(dir, anyPort, familyOf(local)), Key: []string{local.String(), remote.String()}}
}

func portElement(dir compiler.Direction, local netip.Addr, p compiler.PortEntry) *knftables.Element {
	return &knftables.Element{
		Set: setName(dir, ports, familyOf(local)),
		Key: []string{local.String(), p.Remote.String(), strconv.Itoa(int(p.Protocol)), strconv.Itoa(int(p.Port))},
	}
}

func rangeElement(dir compiler.Direction, local netip.Addr, r compiler.Rectangle) *knftables.Element {
	return &knftables.Element{
		Set: setName(dir, ranges, familyOf(local)),
		Key: []string{
			local.String(),
			interval(r.RemoteFirst.String(), r.RemoteLast.String()),
			interval(strconv.Itoa(int(r.ProtocolFirst)), strconv.Itoa(int(r.ProtocolLast))),
			interval(strconv.Itoa(int(r.PortFirst)), strconv.Itoa(int(r.PortLast))),
		},
	}
}

func interval(first, last string) string {
	if first == last {
		return first
	}
	return first + "-" + last
}

// setSizes counts the elements each set holds for a ruleset.
func setSizes(rs *compiler.Ruleset) map[string]int {
	out := map[string]int{}
	for d, rows := range rs.Directions {
		dir := compiler.Direction(d)
		for _, f := range families() {
			for _, k := range kinds() {
				out[setName(dir, k, f)] = 0
			}
		}
		for local, row := range rows {
			f := familyOf(local)
			out[setName(dir, isolated, f)]++
			out[setName(dir, anyPort, f)] += len(row.AnyPort)
			out[setName(dir, ports, f)] += len(row.Ports)
			out[setName(dir, ranges, f)] += len(row.Ranges)
		}
	}
	return out
}

// netnsInterface runs every nft command of an interface in a network namespace.
type netnsInterface struct {
	inner knftables.Interface
	path  string
}

func (n *netnsInterface) in(fn func() error) error { return netns.Do(n.path, fn) }

func (n *netnsInterface) NewTransaction() *knftables.Transaction { return n.inner.NewTransaction() }

func (n *netnsInterface) Run(ctx context.Context, tx *knftables.Transaction) error {
	return n.in(func() error { return n.inner.Run(ctx, tx) })
}

func (n *netnsInterface) Check(ctx context.Context, tx *knftables.Transaction) error {
	return n.in(func() error { return n.inner.Check(ctx, tx) })
}

func (n *netnsInterface) ListAll(ctx context.Context) (out map[string][]string, err error) {
	err = n.in(func() error { out, err = n.inner.ListAll(ctx); return err })
	return out, err
}

func (n *netnsInterface) List(ctx context.Context, objectType string) (out []string, err error) {
	err = n.in(func() error { out, err = n.inner.List(ctx, objectType); return err })
	return out, err
}

func (n *netnsInterface) ListRules(ctx context.Context, chain string) (out []*knftables.Rule, err error) {
	err = n.in(func() error { out, err = n.inner.ListRules(ctx, chain); return err })
	return out, err
}

func (n *netnsInterface) ListElements(ctx context.Context, objectType, name string) (out []*knftables.Element, err error) {
	err = n.in(func() error { out, err = n.inner.ListElements(ctx, objectType, name); return err })
	return out, err
}

func (n *netnsInterface) ListCounters(ctx context.Context) (out []*knftables.Counter, err error) {
	err = n.in(func() error { out, err = n.inner.ListCounters(ctx); return err })
	return out, err
}
