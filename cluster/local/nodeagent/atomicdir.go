package nodeagent

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// A configMap or secret volume is written as the kubelet writes it, so that
// an update is seen all at once: the files are in a directory of their own,
// ..TIMESTAMP, which the symlink ..data names; every top-level entry of the
// volume is a symlink into ..data (key -> ..data/key). An update writes a
// new ..TIMESTAMP directory, points ..data at it by renaming a new symlink
// over it (one atomic step: a reader sees the old files or the new ones,
// never a mix), then adds and removes the top-level links and removes the
// old directory.

// dataLink is the symlink that names the current files of an atomic
// volume directory.
const dataLink = "..data"

// writeAtomicDir makes dir hold exactly files, as described above; it
// changes nothing (and returns false) when dir holds them already.
func writeAtomicDir(dir string, files []volumeFile) (bool, error) {
	top := map[string]bool{}
	for _, f := range files {
		clean := path.Clean(f.path)
		if path.IsAbs(f.path) || clean == "." || strings.HasPrefix(clean, "..") {
			return false, fmt.Errorf("item path %q leaves the volume or is reserved", f.path)
		}
		top[strings.SplitN(clean, "/", 2)[0]] = true
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	old, _ := os.Readlink(filepath.Join(dir, dataLink))
	if old != "" && sameFiles(filepath.Join(dir, old), files) {
		return false, nil
	}
	current, err := os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return false, fmt.Errorf("writing volume %s: %w", dir, err)
	}
	for _, f := range files {
		target := filepath.Join(current, f.path)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return false, err
		}
		if err := os.WriteFile(target, f.data, f.mode); err != nil {
			return false, err
		}
		if err := os.Chmod(target, f.mode); err != nil {
			return false, err
		}
	}
	if err := replaceSymlink(filepath.Join(dir, dataLink), filepath.Base(current)); err != nil {
		return false, fmt.Errorf("writing volume %s: %w", dir, err)
	}
	for name := range top {
		link := filepath.Join(dataLink, name)
		if got, err := os.Readlink(filepath.Join(dir, name)); err == nil && got == link {
			continue
		}
		if err := replaceSymlink(filepath.Join(dir, name), link); err != nil {
			return false, fmt.Errorf("writing volume %s: %w", dir, err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		name := e.Name()
		stale := !strings.HasPrefix(name, "..") && !top[name] && e.Type()&fs.ModeSymlink != 0 ||
			strings.HasPrefix(name, "..") && e.IsDir() && name != filepath.Base(current)
		if stale {
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				return false, fmt.Errorf("writing volume %s: %w", dir, err)
			}
		}
	}
	return true, nil
}

// replaceSymlink points link at target in one rename.
func replaceSymlink(link, target string) error {
	tmp := link + "_tmp"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, link)
}

// sameFiles says whether dir holds exactly files, with their contents and
// modes.
func sameFiles(dir string, files []volumeFile) bool {
	want := map[string]volumeFile{}
	for _, f := range files {
		want[path.Clean(f.path)] = f
	}
	seen := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		f, ok := want[filepath.ToSlash(rel)]
		if !ok {
			return fs.ErrExist
		}
		st, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if st.Mode().Perm() != f.mode.Perm() || !bytes.Equal(data, f.data) {
			return fs.ErrExist
		}
		seen++
		return nil
	})
	return err == nil && seen == len(want)
}
