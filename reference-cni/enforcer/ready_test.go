package enforcer

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netpolcheck/netpolcheck/reference-cni/enforcer/compiler"
)

func TestReadyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "enforcer.ready")
	if err := os.WriteFile(path, []byte("stale\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	onCommit, err := ReadyFile(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the stale ready file is still there: %v", err)
	}
	onCommit(Commit{Seq: 1, Unenforceable: []*compiler.UnenforceableError{{Namespace: "x", Name: "broken"}}})
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ready after a sync that kept an unenforceable policy out: %v", err)
	}
	onCommit(Commit{Seq: 2})
	onCommit(Commit{Seq: 3})
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "seq=2 ") {
		t.Errorf("ready file %q, want the first clean sync (seq=2)", data)
	}
}
