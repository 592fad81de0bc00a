package sourceport

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// clock is a settable clock for choosers.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func dest(i int) Key {
	return Key{Protocol: "UDP", Dest: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i / 250), byte(1 + i%250)}), 80)}
}

// The suites run one probe process per source pod and round, each probing
// the same destinations in the same order. No two of them may give a
// destination the same source port within conntrack's memory of a flow:
// ports taken in turn by each process from a random start did (two
// processes starting close together reused each other's ports destination
// by destination), random ports did by chance.
func TestProcessesNeverReuseADestinationsPort(t *testing.T) {
	const processes, destinations = 2000, 40
	clk := &clock{t: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)}
	seen := map[Key]map[int]time.Time{}
	for p := range processes {
		c := withClock(clk.now)
		for d := range destinations {
			k := dest(d)
			port := c.take(k)
			if port < firstPort || port > lastPort {
				t.Fatalf("port %d outside %d-%d", port, firstPort, lastPort)
			}
			if at, ok := seen[k][port]; ok && clk.t.Sub(at) < wrap {
				t.Fatalf("process %d gave %s port %d again %s after it had it", p, k.Dest, port, clk.t.Sub(at))
			}
			if seen[k] == nil {
				seen[k] = map[int]time.Time{}
			}
			seen[k][port] = clk.t
			clk.t = clk.t.Add(time.Millisecond / 4)
		}
		clk.t = clk.t.Add(50 * time.Millisecond) // the next round's exec
	}
}

// Concurrent probes to different destinations start on different ports, so
// they seldom contend for one.
func TestDestinationsStartApart(t *testing.T) {
	c := withClock((&clock{t: time.Unix(1e9, 0)}).now)
	ports := map[int]bool{}
	for d := range 64 {
		ports[c.take(dest(d))] = true
	}
	if len(ports) < 60 {
		t.Fatalf("64 destinations at one instant got %d distinct ports", len(ports))
	}
}

// A process that probes one destination several times within a tick, or
// faster than the clock moves, takes the following ports, wrapping at the
// end of the range; once the clock is ahead again, its port is used.
func TestBurstsTakeTheFollowingPorts(t *testing.T) {
	clk := &clock{t: time.Unix(1e9, 0)}
	c := withClock(clk.now)
	k := dest(1)
	first := c.take(k)
	c.last[k] = lastPort - 1 // as if a burst had run to the end of the range
	for _, want := range []int{lastPort, firstPort, firstPort + 1} {
		if got := c.take(k); got != want {
			t.Fatalf("took %d, want %d", got, want)
		}
	}
	c = withClock(clk.now)
	if got := c.take(k); got != first {
		t.Fatalf("a new chooser took %d at the same instant, want the clock's %d", got, first)
	}
	for i := 1; i <= 3; i++ {
		if got, want := c.take(k), firstPort+(first-firstPort+i)%size; got != want {
			t.Fatalf("burst probe %d took %d, want %d", i, got, want)
		}
	}
	clk.t = clk.t.Add(time.Second) // 125 ticks: the clock is ahead of the burst
	if got, want := c.take(k), firstPort+(first-firstPort+125)%size; got != want {
		t.Fatalf("a second later took %d, want the clock's %d", got, want)
	}
}

func TestBind(t *testing.T) {
	inUse := func(port int) error { return fmt.Errorf("binding %d: %w", port, syscall.EADDRINUSE) }
	other := errors.New("permission denied")
	k := dest(7)
	start := clockPort(k, time.Unix(1e9, 0))
	at := func(i int) int { return firstPort + (start-firstPort+i)%size }
	for _, tc := range []struct {
		name    string
		busy    map[int]bool
		fail    error
		want    int
		wantErr error
	}{
		{name: "first port free", want: at(0)},
		{name: "skips ports in use", busy: map[int]bool{at(0): true, at(1): true}, want: at(2)},
		{name: "other errors are returned at once", fail: other, wantErr: other},
		{name: "gives up after its attempts", busy: allPorts(), wantErr: syscall.EADDRINUSE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := withClock((&clock{t: time.Unix(1e9, 0)}).now)
			got, err := Bind(c, k, func(port int) (int, error) {
				switch {
				case tc.fail != nil:
					return 0, tc.fail
				case tc.busy[port]:
					return 0, inUse(port)
				}
				return port, nil
			})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Fatalf("bound %d, want %d", got, tc.want)
			}
		})
	}
}

func allPorts() map[int]bool {
	m := map[int]bool{}
	for p := firstPort; p <= lastPort; p++ {
		m[p] = true
	}
	return m
}

// A port that a socket holds is skipped: the kernel's error for it wraps
// EADDRINUSE, as Bind expects.
func TestBindSkipsAPortASocketHolds(t *testing.T) {
	at := time.Unix(1e9, 0)
	k := dest(3)
	held := clockPort(k, at)
	taken, err := net.ListenUDP("udp4", &net.UDPAddr{Port: held})
	if err != nil {
		t.Skipf("port %d is in use here: %v", held, err)
	}
	defer taken.Close()
	c := withClock((&clock{t: at}).now)
	conn, err := Bind(c, k, func(port int) (*net.UDPConn, error) {
		return net.ListenUDP("udp4", &net.UDPAddr{Port: port})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got, want := conn.LocalAddr().(*net.UDPAddr).Port, firstPort+(held-firstPort+1)%size; got != want {
		t.Fatalf("bound %d, want %d (the clock's %d is held)", got, want, held)
	}
}
