package nft

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer/compiler"
	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer/internal/testnet"
)

// TestRealNftables programs a real table in a namespace: a full sync, an
// incremental one that replaces interval elements by overlapping ones (the
// kernel rejects overlaps within a set, so deletions must come first), and a
// full sync by a new programmer over the existing table, as after a restart.
func TestRealNftables(t *testing.T) {
	ns := testnet.New(t).Namespace("nft")
	nftables, err := NewInNetns(ns.Path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p := NewProgrammer(nftables)
	if _, err := p.Sync(ctx, sampleRuleset()); err != nil {
		t.Fatalf("full sync: %v", err)
	}
	next := sampleRuleset()
	row := next.Directions[compiler.Ingress][podA]
	row.Ranges = []compiler.Rectangle{
		{RemoteFirst: netip.MustParseAddr("192.0.2.0"), RemoteLast: netip.MustParseAddr("192.0.2.127"), ProtocolFirst: 6, ProtocolLast: 6, PortFirst: 80, PortLast: 90},
		{RemoteFirst: netip.MustParseAddr("192.0.2.128"), RemoteLast: netip.MustParseAddr("192.0.2.255"), ProtocolFirst: 0, ProtocolLast: 255, PortFirst: 0, PortLast: 65535},
	}
	res, err := p.Sync(ctx, next)
	if err != nil {
		t.Fatalf("incremental sync replacing overlapping ranges: %v", err)
	}
	if res.Full || res.Added != 2 || res.Removed != 2 {
		t.Errorf("incremental result %+v, want 2 added and 2 removed", res)
	}
	restarted := NewProgrammer(nftables)
	if res, err := restarted.Sync(ctx, sampleRuleset()); err != nil || !res.Full {
		t.Fatalf("full sync over an existing table: %+v, %v", res, err)
	}
	out, err := ns.Exec("nft", "list", "set", "inet", TableName, "ingress-ranges-ip4")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"10.244.1.10 . 192.0.2.0-192.0.2.9 . 0-255 . 0-65535", "10.244.1.10 . 192.0.2.10 . sctp . 80-81"} {
		if !strings.Contains(out, want) {
			t.Errorf("set lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "192.0.2.128") {
		t.Errorf("the full sync left an old element:\n%s", out)
	}
	if err := Uninstall(ctx, nftables); err != nil {
		t.Fatal(err)
	}
	if out, _ := ns.Exec("nft", "list", "tables"); strings.Contains(out, TableName) {
		t.Errorf("table still there after Uninstall: %s", out)
	}
}
