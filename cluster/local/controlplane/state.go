package controlplane

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/netpolcheck/netpolcheck/cluster/local/controlplane/detached"
)

// Entries of the state dir with a fixed role.
const (
	// lockName is the lock file; it is never removed.
	lockName = ".lock"
	// stateName is the state file read by Start and Reap.
	stateName = "state.json"
	// logsDir holds one log file per component.
	logsDir = "logs"
)

// state is what a later process needs to find and stop a running control
// plane. It is rewritten after every started process, so that a crash during
// Start leaves enough behind for Reap.
type state struct {
	Version    string `json:"version"`
	Kubeconfig string `json:"kubeconfig"`
	Server     string `json:"server"`
	// Processes in start order; they are stopped in reverse order.
	Processes []detached.Process `json:"processes"`
}

func statePath(stateDir string) string { return filepath.Join(stateDir, stateName) }

// readState returns the recorded state, or nil when there is none.
func readState(stateDir string) (*state, error) {
	data, err := os.ReadFile(statePath(stateDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading control-plane state: %w", err)
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("parsing control-plane state %s: %w", statePath(stateDir), err)
	}
	return &st, nil
}

// write replaces the state file atomically.
func (st *state) write(stateDir string) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding control-plane state: %w", err)
	}
	tmp := statePath(stateDir) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("writing control-plane state: %w", err)
	}
	if err := os.Rename(tmp, statePath(stateDir)); err != nil {
		return fmt.Errorf("writing control-plane state: %w", err)
	}
	return nil
}

// firstAlive returns the first recorded process that still runs.
func (st *state) firstAlive() (detached.Process, bool) {
	for _, p := range st.Processes {
		if p.Alive() {
			return p, true
		}
	}
	return detached.Process{}, false
}

// clearStateDir removes everything in stateDir except the lock file, which
// the caller holds, and the entries named in keep.
func clearStateDir(stateDir string, keep []string) error {
	entries, err := os.ReadDir(stateDir)
	if err != nil {
		return fmt.Errorf("reading state dir: %w", err)
	}
	var errs []error
	for _, entry := range entries {
		if entry.Name() == lockName || slices.Contains(keep, entry.Name()) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(stateDir, entry.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("removing control-plane state: %w", err)
	}
	return nil
}
