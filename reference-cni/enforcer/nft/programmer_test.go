package nft

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"sigs.k8s.io/knftables"

	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer/compiler"
)

// recorder is a knftables fake that remembers the text of every transaction.
type recorder struct {
	*knftables.Fake
	transactions []string
}

func (r *recorder) Run(ctx context.Context, tx *knftables.Transaction) error {
	r.transactions = append(r.transactions, tx.String())
	return r.Fake.Run(ctx, tx)
}

func newRecorder() *recorder {
	return &recorder{Fake: knftables.NewFake(knftables.InetFamily, TableName)}
}

var (
	podA  = netip.MustParseAddr("10.244.1.10")
	podB  = netip.MustParseAddr("10.244.1.11")
	podA6 = netip.MustParseAddr("fd00:10:244:1::10")
	podB6 = netip.MustParseAddr("fd00:10:244:1::11")
)

func sampleRuleset() *compiler.Ruleset {
	rs := compiler.NewRuleset()
	rs.Directions[compiler.Ingress][podA] = &compiler.Row{
		AnyPort: []netip.Addr{podA},
		Ports:   []compiler.PortEntry{{Remote: podB, Protocol: 6, Port: 80}},
		Ranges: []compiler.Rectangle{
			{RemoteFirst: netip.MustParseAddr("192.0.2.0"), RemoteLast: netip.MustParseAddr("192.0.2.9"), ProtocolFirst: 0, ProtocolLast: 255, PortFirst: 0, PortLast: 65535},
			{RemoteFirst: netip.MustParseAddr("192.0.2.10"), RemoteLast: netip.MustParseAddr("192.0.2.10"), ProtocolFirst: 132, ProtocolLast: 132, PortFirst: 80, PortLast: 81},
		},
	}
	rs.Directions[compiler.Ingress][podA6] = &compiler.Row{AnyPort: []netip.Addr{podB6}}
	rs.Directions[compiler.Egress][podB] = &compiler.Row{}
	return rs
}

func TestFullSyncProgramsLayoutAndElements(t *testing.T) {
	fake := newRecorder()
	p := NewProgrammer(fake)
	res, err := p.Sync(context.Background(), sampleRuleset())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Full || res.Added != 8 || res.Removed != 0 || res.Elements != 8 {
		t.Errorf("result = %+v, want a full sync adding 8 elements", res)
	}
	if res.Sets["ingress-ranges-ip4"] != 2 || res.Sets["ingress-any-ip6"] != 1 || res.Sets["egress-isolated-ip4"] != 1 {
		t.Errorf("set sizes = %v", res.Sets)
	}
	dump := fake.Dump()
	for _, want := range []string{
		"add chain inet netpolcheck pod-forward { type filter hook forward priority 0 ; policy accept ;",
		"add rule inet netpolcheck pod-forward ct direction reply ct state established,related accept",
		"add rule inet netpolcheck pod-forward ip saddr @egress-isolated-ip4 jump egress-ip4",
		"add rule inet netpolcheck pod-forward ip6 daddr @ingress-isolated-ip6 jump ingress-ip6",
		"add rule inet netpolcheck ingress-ip4 ip daddr . ip saddr . meta l4proto . th dport @ingress-ports-ip4 return",
		"add rule inet netpolcheck egress-ip6 ip6 saddr . ip6 daddr @egress-any-ip6 return",
		"add set inet netpolcheck ingress-ranges-ip4 { type ipv4_addr . ipv4_addr . inet_proto . inet_service ; flags interval ; }",
		"add element inet netpolcheck ingress-ranges-ip4 { 10.244.1.10 . 192.0.2.0-192.0.2.9 . 0-255 . 0-65535 }",
		"add element inet netpolcheck ingress-ranges-ip4 { 10.244.1.10 . 192.0.2.10 . 132 . 80-81 }",
		"add element inet netpolcheck ingress-ports-ip4 { 10.244.1.10 . 10.244.1.11 . 6 . 80 }",
		"add element inet netpolcheck ingress-any-ip6 { fd00:10:244:1::10 . fd00:10:244:1::11 }",
		"add element inet netpolcheck egress-isolated-ip4 { 10.244.1.11 }",
	} {
		if !strings.Contains(dump, want) {
			t.Errorf("table lacks %q; dump:\n%s", want, dump)
		}
	}
	// Egress is checked before ingress in the base chain.
	if strings.Index(dump, "jump egress-ip4") > strings.Index(dump, "jump ingress-ip4") {
		t.Errorf("ingress is checked before egress:\n%s", dump)
	}
	tx := fake.transactions[0]
	if strings.Contains(tx, "delete table") || !strings.Contains(tx, "flush set inet netpolcheck ingress-ranges-ip4") {
		t.Errorf("a full sync must flush sets, never delete the table:\n%s", tx)
	}
}

func TestIncrementalSyncSendsOnlyChangedElements(t *testing.T) {
	fake := newRecorder()
	p := NewProgrammer(fake)
	ctx := context.Background()
	if _, err := p.Sync(ctx, sampleRuleset()); err != nil {
		t.Fatal(err)
	}
	next := sampleRuleset()
	row := next.Directions[compiler.Ingress][podA]
	row.Ports = []compiler.PortEntry{{Remote: podB, Protocol: 6, Port: 81}}
	row.Ranges = row.Ranges[1:]
	res, err := p.Sync(ctx, next)
	if err != nil {
		t.Fatal(err)
	}
	if res.Full || res.Added != 1 || res.Removed != 2 {
		t.Errorf("result = %+v, want 1 added and 2 removed", res)
	}
	tx := fake.transactions[1]
	for _, line := range strings.Split(strings.TrimSpace(tx), "\n") {
		if !strings.HasPrefix(line, "add element ") && !strings.HasPrefix(line, "delete element ") {
			t.Errorf("incremental transaction has %q; want only element changes:\n%s", line, tx)
		}
	}
	if strings.Index(tx, "add element") < strings.LastIndex(tx, "delete element") {
		t.Errorf("deletions must come before additions:\n%s", tx)
	}
	dump := fake.Dump()
	if strings.Contains(dump, ". 6 . 80 }") || !strings.Contains(dump, "10.244.1.10 . 10.244.1.11 . 6 . 81") || strings.Contains(dump, "192.0.2.0-192.0.2.9") {
		t.Errorf("table not updated:\n%s", dump)
	}

	// Nothing changed: no transaction at all.
	if _, err := p.Sync(ctx, next); err != nil {
		t.Fatal(err)
	}
	if len(fake.transactions) != 2 {
		t.Errorf("an unchanged ruleset sent a transaction: %s", fake.transactions[len(fake.transactions)-1])
	}
}

// failing fails every transaction.
type failing struct{ *recorder }

func (f failing) Run(context.Context, *knftables.Transaction) error {
	return errors.New("nft: injected failure")
}

func TestFailedSyncMakesNextSyncFull(t *testing.T) {
	fake := newRecorder()
	p := NewProgrammer(fake)
	ctx := context.Background()
	if _, err := p.Sync(ctx, sampleRuleset()); err != nil {
		t.Fatal(err)
	}
	p.nft = failing{fake}
	if _, err := p.Sync(ctx, compiler.NewRuleset()); err == nil {
		t.Fatal("sync through a failing nft succeeded")
	}
	p.nft = fake
	res, err := p.Sync(ctx, sampleRuleset())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Full {
		t.Errorf("sync after a failure was not full: %+v", res)
	}
}
