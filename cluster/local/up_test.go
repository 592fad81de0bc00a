package local

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netpolcheck/netpolcheck/cluster/local/topology"
)

func TestWaitEnforcersSynced(t *testing.T) {
	c := &Cluster{StateDir: t.TempDir(), Nodes: []topology.Node{{Name: "node1"}, {Name: "node2"}}}
	for _, n := range c.Nodes {
		if err := os.MkdirAll(filepath.Dir(c.EnforcerReadyFile(n.Name)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(c.EnforcerReadyFile("node1"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := c.waitEnforcersSynced(ctx); err == nil || !strings.Contains(err.Error(), "node2") || strings.Contains(err.Error(), "node1") {
		t.Fatalf("with node2's enforcer not synced: %v, want an error naming node2 only", err)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		os.WriteFile(c.EnforcerReadyFile("node2"), nil, 0o644)
	}()
	start := time.Now()
	if err := c.waitEnforcersSynced(context.Background()); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Errorf("returned after %v, before node2's enforcer synced", waited)
	}
}
