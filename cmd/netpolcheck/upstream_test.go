package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestCountUpstreamCountsOnlyFocusedSpecs(t *testing.T) {
	const report = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="5" failures="1">
  <testsuite name="Kubernetes e2e suite" tests="5">
    <testcase name="[It] [sig-network] Netpol NetworkPolicy between server and client should support a 'default-deny-ingress' policy [Feature:NetworkPolicy]"></testcase>
    <testcase name="[It] [sig-network] Netpol NetworkPolicy between server and client should enforce updated policy [Feature:NetworkPolicy]"><failure message="wrong cells"></failure></testcase>
    <testcase name="[sig-network] Netpol [Feature:SCTPConnectivity] [LinuxOnly] NetworkPolicy between server and client using SCTP should enforce policy based on Ports [Feature:NetworkPolicy]"><skipped message="skipped"></skipped></testcase>
    <testcase name="[sig-storage] CSI Volumes should mount"><skipped message="skipped"></skipped></testcase>
    <testcase name="[sig-network] Netpol API should support creating NetworkPolicy API operations"></testcase>
  </testsuite>
</testsuites>`
	path := filepath.Join(t.TempDir(), "junit.xml")
	if err := os.WriteFile(path, []byte(report), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := countUpstream(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.focused != 4 || c.passed != 2 || c.failed != 1 || c.skipped != 1 {
		t.Errorf("counts = %+v, want 4 netpol specs: 2 passed, 1 failed, 1 skipped", c)
	}
	if !slices.Equal(c.failedNames, []string{"[It] [sig-network] Netpol NetworkPolicy between server and client should enforce updated policy [Feature:NetworkPolicy]"}) {
		t.Errorf("failed = %q", c.failedNames)
	}
	empty := filepath.Join(t.TempDir(), "junit.xml")
	if err := os.WriteFile(empty, []byte(`<testsuites><testsuite><testcase name="[sig-storage] CSI"/></testsuite></testsuites>`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := countUpstream(empty); err == nil {
		t.Error("a report without a netpol spec was accepted")
	}
}
