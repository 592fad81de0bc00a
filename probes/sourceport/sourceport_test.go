package sourceport

import (
	"errors"
	"fmt"
	"syscall"
	"testing"
)

func TestTakeWrapsAround(t *testing.T) {
	s := StartingAt(lastPort - 1)
	for _, want := range []int{lastPort - 1, lastPort, firstPort, firstPort + 1} {
		if got := s.take(); got != want {
			t.Fatalf("took %d, want %d", got, want)
		}
	}
	for range 100 {
		if p := New().take(); p < firstPort || p > lastPort {
			t.Fatalf("a new sequence starts at %d, outside %d-%d", p, firstPort, lastPort)
		}
	}
}

func TestBind(t *testing.T) {
	inUse := func(port int) error { return fmt.Errorf("binding %d: %w", port, syscall.EADDRINUSE) }
	other := errors.New("permission denied")
	for _, tc := range []struct {
		name     string
		busy     map[int]bool
		fail     error
		want     int
		wantErr  error
		wantNext int
	}{
		{name: "first port free", want: 40000, wantNext: 40001},
		{name: "skips ports in use", busy: map[int]bool{40000: true, 40001: true}, want: 40002, wantNext: 40003},
		{name: "other errors are returned at once", fail: other, wantErr: other, wantNext: 40001},
		{name: "gives up after its attempts", busy: allPorts(), wantErr: syscall.EADDRINUSE, wantNext: 40000 + maxAttempts},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := StartingAt(40000)
			got, err := Bind(s, func(port int) (int, error) {
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
			if next := s.take(); next != tc.wantNext {
				t.Fatalf("next port %d, want %d", next, tc.wantNext)
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
