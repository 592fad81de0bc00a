package ipam

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

func newPool(t *testing.T, dir string, ranges ...string) *Pool {
	t.Helper()
	var prefixes []netip.Prefix
	for _, r := range ranges {
		prefixes = append(prefixes, netip.MustParsePrefix(r))
	}
	p, err := New(dir, "testnet", prefixes)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func owner(i int) Owner { return Owner{ContainerID: fmt.Sprintf("container-%d", i), IfName: "eth0"} }

func TestAllocateSkipsReservedAddresses(t *testing.T) {
	p := newPool(t, t.TempDir(), "10.99.7.0/29", "fd00:99:7::/125")
	var got []string
	for i := range 5 {
		addrs, err := p.Allocate(owner(i))
		if err != nil {
			t.Fatalf("Allocate %d: %v", i, err)
		}
		got = append(got, addrs[0].String()+" "+addrs[1].String())
	}
	want := []string{
		"10.99.7.2 fd00:99:7::2", "10.99.7.3 fd00:99:7::3", "10.99.7.4 fd00:99:7::4",
		"10.99.7.5 fd00:99:7::5", "10.99.7.6 fd00:99:7::6",
	}
	if !slices.Equal(got, want) {
		t.Errorf("allocated %v, want %v", got, want)
	}
}

func TestAllocateIsIdempotent(t *testing.T) {
	p := newPool(t, t.TempDir(), "10.99.7.0/24")
	first, err := p.Allocate(owner(1))
	if err != nil {
		t.Fatal(err)
	}
	again, err := p.Allocate(owner(1))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(first, again) {
		t.Errorf("second Allocate gave %v, first gave %v", again, first)
	}
}

func TestExhaustedPoolLeavesNothingBehind(t *testing.T) {
	// The IPv6 range has room for many pods, the IPv4 one for a single pod:
	// the failed second allocation must not keep its IPv6 address.
	p := newPool(t, t.TempDir(), "10.99.7.0/30", "fd00:99:7::/64")
	if _, err := p.Allocate(owner(1)); err != nil {
		t.Fatal(err)
	}
	_, err := p.Allocate(owner(2))
	var exhausted *ExhaustedError
	if !errors.As(err, &exhausted) {
		t.Fatalf("Allocate on a full range: got %v, want ExhaustedError", err)
	}
	if exhausted.Range.String() != "10.99.7.0/30" || exhausted.Allocated != 1 {
		t.Errorf("ExhaustedError = %+v", exhausted)
	}
	all, err := p.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Errorf("after the failed allocation the pool holds %v, want only owner 1's two addresses", all)
	}
}

func TestReleaseFreesAndRoundRobins(t *testing.T) {
	p := newPool(t, t.TempDir(), "10.99.7.0/29")
	a, _ := p.Allocate(owner(1))
	if err := p.Release(owner(1)); err != nil {
		t.Fatal(err)
	}
	if err := p.Release(owner(1)); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	b, err := p.Allocate(owner(2))
	if err != nil {
		t.Fatal(err)
	}
	if a[0] == b[0] {
		t.Errorf("freed address %s was reused at once; round robin should move on", a[0])
	}
	// Fill the range and check the freed address comes back when it wraps.
	for i := 3; i <= 6; i++ {
		if _, err := p.Allocate(owner(i)); err != nil {
			t.Fatalf("Allocate %d: %v", i, err)
		}
	}
	got, err := p.Lookup(owner(6))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != a[0] {
		t.Errorf("after wrapping, owner 6 got %v, want the freed %s", got, a[0])
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	before := newPool(t, dir, "10.99.7.0/24")
	a, _ := before.Allocate(owner(1))
	after := newPool(t, dir, "10.99.7.0/24")
	got, err := after.Lookup(owner(1))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, a) {
		t.Errorf("a new Pool on the same directory sees %v, want %v", got, a)
	}
	b, _ := after.Allocate(owner(2))
	if b[0] == a[0] {
		t.Errorf("a new Pool handed out the allocated %s again", a[0])
	}
}

func TestConcurrentAllocationsAreDistinct(t *testing.T) {
	dir := t.TempDir()
	const n = 100
	var wg sync.WaitGroup
	results := make([]netip.Addr, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			// A Pool per goroutine, as separate plugin processes would have.
			p := newPool(t, dir, "10.99.7.0/24")
			addrs, err := p.Allocate(owner(i))
			if err == nil {
				results[i] = addrs[0]
			}
			errs[i] = err
		})
	}
	wg.Wait()
	seen := make(map[netip.Addr]int)
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Allocate %d: %v", i, errs[i])
		}
		if j, dup := seen[results[i]]; dup {
			t.Fatalf("owners %d and %d both got %s", j, i, results[i])
		}
		seen[results[i]] = i
	}
}

func TestReleaseAllExcept(t *testing.T) {
	p := newPool(t, t.TempDir(), "10.99.7.0/24")
	for i := range 4 {
		if _, err := p.Allocate(owner(i)); err != nil {
			t.Fatal(err)
		}
	}
	// A damaged allocation file belongs to nobody and must be collected.
	if err := os.WriteFile(filepath.Join(p.Dir(), "10.99.7.200"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	backdate(t, p)
	freed, err := p.ReleaseAllExcept([]Owner{owner(0), owner(2)})
	if err != nil {
		t.Fatal(err)
	}
	if len(freed) != 3 {
		t.Errorf("freed %v, want owners 1 and 3 and the damaged file", freed)
	}
	left, _ := p.List()
	var owners []Owner
	for _, a := range left {
		owners = append(owners, a.Owner)
	}
	if len(owners) != 2 || !slices.Contains(owners, owner(0)) || !slices.Contains(owners, owner(2)) {
		t.Errorf("left %v, want owners 0 and 2", owners)
	}
}

func TestRangeChecks(t *testing.T) {
	cases := map[string]uint64{
		"10.244.1.0/24":      253,
		"10.244.1.0/30":      1,
		"fd00:10:244:1::/64": math.MaxUint64,
		"fd00::/126":         2,
	}
	for r, want := range cases {
		if got := Capacity(netip.MustParsePrefix(r)); got != want {
			t.Errorf("Capacity(%s) = %d, want %d", r, got, want)
		}
	}
	for _, bad := range []string{"10.244.1.0/31", "10.244.1.7/24", "fd00::/127"} {
		if err := ValidateRange(netip.MustParsePrefix(bad)); err == nil {
			t.Errorf("ValidateRange(%s) accepted it", bad)
		}
	}
	if got := Gateway(netip.MustParsePrefix("fd00:10:244:1::/64")); got.String() != "fd00:10:244:1::1" {
		t.Errorf("Gateway = %s", got)
	}
	if got := lastPodAddr(netip.MustParsePrefix("10.244.1.0/24")); got.String() != "10.244.1.254" {
		t.Errorf("lastPodAddr = %s", got)
	}
}

func TestNewRejectsBadInput(t *testing.T) {
	if _, err := New(t.TempDir(), "../escape", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}); err == nil {
		t.Error("New accepted a network name with a slash")
	}
	if _, err := New(t.TempDir(), "net", nil); err == nil {
		t.Error("New accepted no ranges")
	}
}

// backdate makes every allocation of p a minute old, older than any GC call
// the test makes next.
func backdate(t *testing.T, p *Pool) {
	t.Helper()
	all, err := p.List()
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Minute)
	for _, a := range all {
		if err := os.Chtimes(p.addrPath(a.Addr), old, old); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReleaseAllExceptSparesInFlightAndYoung: GC frees neither the address of
// an ADD still in flight nor one allocated as the call began, both missing
// from the runtime's (older) list of valid attachments.
func TestReleaseAllExceptSparesInFlightAndYoung(t *testing.T) {
	p := newPool(t, t.TempDir(), "10.99.8.0/24")
	for i := range 2 {
		if _, err := p.Allocate(owner(i)); err != nil {
			t.Fatal(err)
		}
	}
	backdate(t, p)
	done, err := p.Begin(owner(0)) // owner 0's ADD is still running
	if err != nil {
		t.Fatal(err)
	}
	if busy, err := p.InFlight(owner(0)); !busy || err != nil {
		t.Fatalf("InFlight(owner 0) = %v, %v during its ADD", busy, err)
	}
	if _, err := p.Allocate(owner(2)); err != nil { // young: not backdated
		t.Fatal(err)
	}
	freed, err := p.ReleaseAllExcept(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(freed) != 1 || freed[0].Owner != owner(1) {
		t.Errorf("freed %v, want only owner 1 (owner 0 in flight, owner 2 younger than the call)", freed)
	}
	done()
	if busy, err := p.InFlight(owner(0)); busy || err != nil {
		t.Fatalf("InFlight(owner 0) = %v, %v after its ADD", busy, err)
	}
	backdate(t, p)
	if freed, err := p.ReleaseAllExcept(nil); err != nil || len(freed) != 2 {
		t.Errorf("once done and old, GC freed %v (%v), want owners 0 and 2", freed, err)
	}
}

// TestConcurrentAddAndGC runs ADD-like operations (mark, allocate, hold a
// while, check) while GCs with an empty valid list run without pause: no
// operation may lose its address before it ends.
func TestConcurrentAddAndGC(t *testing.T) {
	p := newPool(t, t.TempDir(), "10.99.9.0/24")
	stop := make(chan struct{})
	var gcs sync.WaitGroup
	gcs.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := p.ReleaseAllExcept(nil); err != nil {
				t.Error(err)
				return
			}
		}
	})
	var adds sync.WaitGroup
	for i := range 40 {
		adds.Go(func() {
			o := owner(i)
			done, err := p.Begin(o)
			if err != nil {
				t.Error(err)
				return
			}
			defer done()
			addrs, err := p.Allocate(o)
			if err != nil {
				t.Error(err)
				return
			}
			// Age the allocation past any GC call so only the mark protects it.
			old := time.Now().Add(-time.Minute)
			if err := os.Chtimes(p.addrPath(addrs[0]), old, old); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(20 * time.Millisecond)
			if held, err := p.Lookup(o); err != nil || len(held) != 1 || held[0] != addrs[0] {
				t.Errorf("%s: during its ADD it holds %v (%v), want %s", o, held, err, addrs[0])
			}
		})
	}
	adds.Wait()
	close(stop)
	gcs.Wait()
}
