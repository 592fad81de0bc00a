package server

import (
	"slices"
	"testing"
)

func TestParsePortSpec(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want []Port
	}{
		{"80", []Port{{Port: 80, Protocol: "TCP"}}},
		{"81/udp", []Port{{Port: 81, Protocol: "UDP"}}},
		{"80/SCTP=serve-80-sctp", []Port{{Port: 80, Protocol: "SCTP", Container: "serve-80-sctp"}}},
		{"80,81/TCP,UDP", []Port{{80, "TCP", ""}, {81, "TCP", ""}, {80, "UDP", ""}, {81, "UDP", ""}}},
	} {
		got, err := ParsePortSpec(tc.spec)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ParsePortSpec(%q) = %v, %v; want %v", tc.spec, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "0", "65536", "http", "80/ICMP", "80,81/TCP=name", "80/TCP="} {
		if got, err := ParsePortSpec(bad); err == nil {
			t.Errorf("ParsePortSpec(%q) = %v, want an error", bad, got)
		}
	}
}

func TestDefaultContainer(t *testing.T) {
	if got := DefaultContainer(81, "SCTP"); got != "serve-81-sctp" {
		t.Errorf("DefaultContainer = %q", got)
	}
}
