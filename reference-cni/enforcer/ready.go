package enforcer

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ReadyFile removes a ready file left by an earlier run and returns an
// Options.OnCommit that writes it after the first sync that programmed every
// policy of the cluster (one with no unenforceable policy), so that whoever
// starts the enforcer can wait for its first sync. The file holds the sync's
// number and time; it appears atomically (written aside, then renamed).
func ReadyFile(path string, log *slog.Logger) (func(Commit), error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("removing the old ready file: %w", err)
	}
	var once sync.Once
	return func(c Commit) {
		if len(c.Unenforceable) > 0 {
			return
		}
		once.Do(func() {
			if err := writeReadyFile(path, c); err != nil {
				log.Error("writing the ready file", "path", path, "err", err)
			}
		})
	}, nil
}

func writeReadyFile(path string, c Commit) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ready-*")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(tmp, "seq=%d time=%s\n", c.Seq, time.Now().UTC().Format(time.RFC3339Nano))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
