package sourceport

import (
	"errors"
	"fmt"
	"syscall"
	"testing"
)

func TestTakeWrapsAround(t *testing.T) {
	s := StartingAt(Last - 1)
	for _, want := range []int{Last - 1, Last, First, First + 1} {
		if got := s.Take(); got != want {
			t.Fatalf("took %d, want %d", got, want)
		}
	}
	for range 100 {
		if p := New().Take(); p < First || p > Last {
			t.Fatalf("a new sequence starts at %d, outside %d-%d", p, First, Last)
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
			if next := s.Take(); next != tc.wantNext {
				t.Fatalf("next port %d, want %d", next, tc.wantNext)
			}
		})
	}
}

func allPorts() map[int]bool {
	m := map[int]bool{}
	for p := First; p <= Last; p++ {
		m[p] = true
	}
	return m
}
