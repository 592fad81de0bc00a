// Package ipam hands out pod addresses from a node's pod CIDRs and keeps the
// allocations on disk, in the style of the host-local IPAM plugin.
//
// Every allocated address is a file in the pool directory, named after the
// address and holding the container ID and interface name that own it. A
// lock file serialises every change with flock(2), so concurrent plugin
// processes never hand out the same address, and a per-range "last reserved"
// file makes allocation round-robin, so a freed address is not reused at
// once. Because the state lives only on disk, it survives plugin restarts.
//
// The first usable address of every range (network address + 1) is the
// node-side gateway and is never allocated; neither is the network address
// nor, for IPv4, the broadcast address.
//
// GC must not free an address whose ADD is still running, nor one allocated
// after the GC call began (the runtime's list of valid attachments predates
// it): an ADD marks its owner in flight (Begin) with a flock on a per-owner
// file under inflight/, and ReleaseAllExcept spares owners whose mark is held
// as well as allocations younger than the call (judged by the pool
// directory's own file clock) plus a grace period: the runtime computes its
// list before the call, so an ADD that ended just before may be missing
// from it. A leaked allocation that young is freed by the next GC.
package ipam

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const (
	lockFileName    = "lock"
	inflightDirName = "inflight"
	// gcGrace is how much older than a GC call an allocation must be for
	// the call to free it.
	gcGrace              = 5 * time.Second
	lastReservedPrefix   = "last_reserved_ip."
	temporaryFilePattern = ".tmp-*"
)

// Owner identifies the attachment an address belongs to: the CNI container
// ID and interface name.
type Owner struct {
	ContainerID string
	IfName      string
}

// String renders the owner as "containerID/ifname".
func (o Owner) String() string { return o.ContainerID + "/" + o.IfName }

// Allocation is one address held by an owner.
type Allocation struct {
	Owner Owner
	Addr  netip.Addr
}

// ExhaustedError reports that a range has no free address left.
type ExhaustedError struct {
	Range     netip.Prefix
	Allocated uint64
}

func (e *ExhaustedError) Error() string {
	return fmt.Sprintf("no free address in range %s: all %d pod addresses are allocated", e.Range, e.Allocated)
}

// Pool allocates addresses from a fixed set of ranges, with its state in one
// directory. A Pool holds no state in memory: several Pools (or processes)
// on the same directory are safe to use at once.
type Pool struct {
	dir    string
	ranges []netip.Prefix
}

// New returns the pool of the network named network, with its state under
// dataDir/network. Every range must be a valid, masked prefix with room for
// at least one pod address besides the gateway.
func New(dataDir, network string, ranges []netip.Prefix) (*Pool, error) {
	if network == "" || strings.ContainsAny(network, `/\`) || network == "." || network == ".." {
		return nil, fmt.Errorf("invalid network name %q for the IPAM directory", network)
	}
	if len(ranges) == 0 {
		return nil, errors.New("no address range configured")
	}
	for _, r := range ranges {
		if err := ValidateRange(r); err != nil {
			return nil, err
		}
	}
	return &Pool{dir: filepath.Join(dataDir, network), ranges: slices.Clone(ranges)}, nil
}

// Dir is the directory that holds the pool's state.
func (p *Pool) Dir() string { return p.dir }

// ValidateRange checks that r can serve as a pod range: a masked prefix with
// room for the gateway and at least one pod.
func ValidateRange(r netip.Prefix) error {
	if !r.IsValid() {
		return fmt.Errorf("invalid range %s", r)
	}
	if r.Masked() != r {
		return fmt.Errorf("range %s has host bits set (did you mean %s?)", r, r.Masked())
	}
	if Capacity(r) == 0 {
		return fmt.Errorf("range %s is too small: it needs room for the gateway and at least one pod", r)
	}
	return nil
}

// Gateway returns the node-side gateway address of a range: its first
// usable address.
func Gateway(r netip.Prefix) netip.Addr { return r.Masked().Addr().Next() }

// Capacity returns how many pod addresses a range holds, saturating at
// math.MaxUint64 for very large IPv6 ranges.
func Capacity(r netip.Prefix) uint64 {
	hostBits := r.Addr().BitLen() - r.Bits()
	// Reserved: the network address and the gateway, plus the broadcast
	// address in IPv4.
	reserved := uint64(2)
	if r.Addr().Is4() {
		reserved = 3
	}
	if hostBits >= 64 {
		return math.MaxUint64
	}
	size := uint64(1) << hostBits
	if size <= reserved {
		return 0
	}
	return size - reserved
}

func firstPodAddr(r netip.Prefix) netip.Addr { return Gateway(r).Next() }

// lastPodAddr is the highest allocatable address: the broadcast address is
// excluded in IPv4.
func lastPodAddr(r netip.Prefix) netip.Addr {
	last := r.Masked().Addr().As16()
	hostBits := r.Addr().BitLen() - r.Bits()
	for i := 15; hostBits > 0; i-- {
		bits := min(hostBits, 8)
		last[i] |= byte(1<<bits - 1)
		hostBits -= bits
	}
	addr := netip.AddrFrom16(last)
	if r.Addr().Is4() {
		return addr.Unmap().Prev()
	}
	return addr
}

// Allocate gives owner one address from every range, in the order of the
// ranges. It is idempotent: an owner that already holds an address in a
// range keeps it.
func (p *Pool) Allocate(owner Owner) ([]netip.Addr, error) {
	var addrs []netip.Addr
	err := p.locked(func() error {
		held, err := p.list()
		if err != nil {
			return err
		}
		addrs = make([]netip.Addr, 0, len(p.ranges))
		var created []netip.Addr
		for _, r := range p.ranges {
			addr, fresh, err := p.allocateIn(r, owner, held)
			if err != nil {
				// Leave nothing behind: undo this call's allocations.
				for _, a := range created {
					_ = os.Remove(p.addrPath(a))
				}
				return err
			}
			if fresh {
				created = append(created, addr)
			}
			addrs = append(addrs, addr)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("allocating addresses for %s: %w", owner, err)
	}
	return addrs, nil
}

func (p *Pool) allocateIn(r netip.Prefix, owner Owner, held []Allocation) (netip.Addr, bool, error) {
	used := make(map[netip.Addr]bool)
	for _, a := range held {
		if !r.Contains(a.Addr) {
			continue
		}
		if a.Owner == owner {
			return a.Addr, false, nil
		}
		used[a.Addr] = true
	}
	if uint64(len(used)) >= Capacity(r) {
		return netip.Addr{}, false, &ExhaustedError{Range: r, Allocated: uint64(len(used))}
	}
	first, last := firstPodAddr(r), lastPodAddr(r)
	candidate := first
	if prev, ok := p.lastReserved(r); ok && prev.Compare(first) >= 0 && prev.Compare(last) < 0 {
		candidate = prev.Next()
	}
	// There is a free address, so this loop ends after at most len(used)+1 steps.
	for used[candidate] {
		if candidate == last {
			candidate = first
		} else {
			candidate = candidate.Next()
		}
	}
	if err := p.writeAtomically(p.addrPath(candidate), owner.ContainerID+"\n"+owner.IfName+"\n"); err != nil {
		return netip.Addr{}, false, err
	}
	if err := p.writeAtomically(p.lastReservedPath(r), candidate.String()); err != nil {
		_ = os.Remove(p.addrPath(candidate))
		return netip.Addr{}, false, err
	}
	return candidate, true, nil
}

// Lookup returns the addresses owner holds, in no particular order.
func (p *Pool) Lookup(owner Owner) ([]netip.Addr, error) {
	var addrs []netip.Addr
	err := p.locked(func() error {
		held, err := p.list()
		for _, a := range held {
			if a.Owner == owner {
				addrs = append(addrs, a.Addr)
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("looking up addresses of %s: %w", owner, err)
	}
	return addrs, nil
}

// Release frees every address owner holds and removes its in-flight mark
// file (the runtime never runs two operations on one attachment at once).
// Releasing an owner that holds nothing is not an error.
func (p *Pool) Release(owner Owner) error {
	_, err := p.releaseWhere(func(a Allocation) bool { return a.Owner == owner })
	if rmErr := os.Remove(p.inflightPath(owner)); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
		err = errors.Join(err, rmErr)
	}
	if err != nil {
		return fmt.Errorf("releasing addresses of %s: %w", owner, err)
	}
	return nil
}

// ReleaseAllExcept frees every allocation whose owner is not in keep, and
// returns what it freed. It is the IPAM half of CNI GC: it spares owners in
// flight (see Begin) and allocations made less than gcGrace before the call
// began, or after.
func (p *Pool) ReleaseAllExcept(keep []Owner) ([]Allocation, error) {
	valid := make(map[Owner]bool, len(keep))
	for _, o := range keep {
		valid[o] = true
	}
	called, err := p.fileClock()
	if err != nil {
		return nil, fmt.Errorf("collecting stale allocations: %w", err)
	}
	var checkErr error
	freed, err := p.releaseWhere(func(a Allocation) bool {
		if valid[a.Owner] {
			return false
		}
		info, err := os.Stat(p.addrPath(a.Addr))
		if err != nil || !info.ModTime().Before(called.Add(-gcGrace)) {
			return false // gone already, or too young
		}
		busy, err := p.InFlight(a.Owner)
		checkErr = errors.Join(checkErr, err)
		return err == nil && !busy
	})
	if err = errors.Join(err, checkErr); err != nil {
		return freed, fmt.Errorf("collecting stale allocations: %w", err)
	}
	return freed, nil
}

// Begin marks an operation (an ADD) on owner in flight until done is
// called; operations on one owner wait for each other. The mark is a flock,
// so a crashed plugin leaves none.
func (p *Pool) Begin(owner Owner) (done func(), err error) {
	dir := filepath.Join(p.dir, inflightDirName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the in-flight directory: %w", err)
	}
	f, err := os.OpenFile(p.inflightPath(owner), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("marking %s in flight: %w", owner, err)
	}
	if err := flock(f, unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("marking %s in flight: %w", owner, err)
	}
	return func() { f.Close() }, nil
}

// InFlight reports whether an operation on owner holds its mark.
func (p *Pool) InFlight(owner Owner) (bool, error) {
	f, err := os.Open(p.inflightPath(owner))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checking whether %s is in flight: %w", owner, err)
	}
	defer f.Close()
	switch err := flock(f, unix.LOCK_SH|unix.LOCK_NB); {
	case errors.Is(err, unix.EWOULDBLOCK):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("checking whether %s is in flight: %w", owner, err)
	}
	return false, nil
}

// fileClock returns the current time as the pool directory's file system
// records it (its timestamps are coarser than time.Now), to compare with
// the allocations' modification times.
func (p *Pool) fileClock() (time.Time, error) {
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return time.Time{}, fmt.Errorf("creating IPAM directory: %w", err)
	}
	f, err := os.CreateTemp(p.dir, temporaryFilePattern)
	if err != nil {
		return time.Time{}, fmt.Errorf("creating a clock file: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the clock file: %w", err)
	}
	return info.ModTime(), nil
}

// inflightPath names owner's mark after a hash of it, so any container ID
// makes a safe file name.
func (p *Pool) inflightPath(owner Owner) string {
	sum := sha256.Sum256([]byte(owner.String()))
	return filepath.Join(p.dir, inflightDirName, hex.EncodeToString(sum[:]))
}

// List returns every allocation in the pool, including addresses outside the
// configured ranges that are left from an earlier configuration.
func (p *Pool) List() ([]Allocation, error) {
	var all []Allocation
	err := p.locked(func() error {
		var err error
		all, err = p.list()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listing allocations: %w", err)
	}
	return all, nil
}

func (p *Pool) releaseWhere(match func(Allocation) bool) ([]Allocation, error) {
	var freed []Allocation
	err := p.locked(func() error {
		held, err := p.list()
		if err != nil {
			return err
		}
		for _, a := range held {
			if !match(a) {
				continue
			}
			if err := os.Remove(p.addrPath(a.Addr)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("freeing %s: %w", a.Addr, err)
			}
			freed = append(freed, a)
		}
		return nil
	})
	return freed, err
}

// list reads every allocation file; the caller holds the lock.
func (p *Pool) list() ([]Allocation, error) {
	entries, err := os.ReadDir(p.dir)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p.dir, err)
	}
	var all []Allocation
	for _, e := range entries {
		addr, err := netip.ParseAddr(e.Name())
		if err != nil || !e.Type().IsRegular() {
			continue // the lock, last-reserved and temporary files
		}
		content, err := os.ReadFile(filepath.Join(p.dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("reading allocation %s: %w", addr, err)
		}
		all = append(all, Allocation{Owner: parseOwner(string(content)), Addr: addr})
	}
	return all, nil
}

// parseOwner reads "containerID\nifname\n". A damaged file yields a partial
// owner that matches no attachment, so GC frees it.
func parseOwner(content string) Owner {
	id, ifName, _ := strings.Cut(strings.TrimRight(content, "\n"), "\n")
	return Owner{ContainerID: strings.TrimSpace(id), IfName: strings.TrimSpace(ifName)}
}

func (p *Pool) lastReserved(r netip.Prefix) (netip.Addr, bool) {
	content, err := os.ReadFile(p.lastReservedPath(r))
	if err != nil {
		return netip.Addr{}, false
	}
	addr, err := netip.ParseAddr(strings.TrimSpace(string(content)))
	return addr, err == nil && r.Contains(addr)
}

func (p *Pool) addrPath(a netip.Addr) string { return filepath.Join(p.dir, a.String()) }

func (p *Pool) lastReservedPath(r netip.Prefix) string {
	return filepath.Join(p.dir, lastReservedPrefix+strings.ReplaceAll(r.String(), "/", "_"))
}

// writeAtomically writes content to a temporary file and renames it into
// place, so a crash never leaves a half-written allocation.
func (p *Pool) writeAtomically(path, content string) error {
	tmp, err := os.CreateTemp(p.dir, temporaryFilePattern)
	if err != nil {
		return fmt.Errorf("creating temporary file: %w", err)
	}
	_, writeErr := tmp.WriteString(content)
	closeErr := tmp.Close()
	if err := errors.Join(writeErr, closeErr); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// locked runs fn while holding the pool's exclusive flock, creating the
// pool directory first if needed.
func (p *Pool) locked(fn func() error) error {
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return fmt.Errorf("creating IPAM directory: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(p.dir, lockFileName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("opening IPAM lock: %w", err)
	}
	defer lock.Close()
	if err := flock(lock, unix.LOCK_EX); err != nil {
		return fmt.Errorf("locking %s: %w", lock.Name(), err)
	}
	// Closing the file releases the lock, also if fn panics.
	return fn()
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
