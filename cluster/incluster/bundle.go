package incluster

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// The lines around a bundle of reports in a log.
const (
	bundleBegin = "--- netpolcheck reports: tar.gz, base64 ---"
	bundleEnd   = "--- end of netpolcheck reports ---"
	lineWidth   = 76
)

// ErrNoBundle is returned when a log holds no complete bundle.
var ErrNoBundle = errors.New("the log holds no bundle of reports")

// WriteBundle writes the files of dir (those that exist) to w as a bundle:
// a gzipped tar, base64 in lines between a begin and an end line, so that a
// pod's log carries them and ReadBundle finds them among other output.
func WriteBundle(w io.Writer, dir string, files []string) error {
	var archive bytes.Buffer
	zw := gzip.NewWriter(&archive)
	tw := tar.NewWriter(zw)
	for _, name := range files {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("bundling the reports: %w", err)
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			return fmt.Errorf("bundling the reports: %w", err)
		}
		if _, err := tw.Write(data); err != nil {
			return fmt.Errorf("bundling the reports: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("bundling the reports: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("bundling the reports: %w", err)
	}
	encoded := base64.StdEncoding.EncodeToString(archive.Bytes())
	var b strings.Builder
	b.WriteString(bundleBegin + "\n")
	for len(encoded) > 0 {
		n := min(lineWidth, len(encoded))
		b.WriteString(encoded[:n] + "\n")
		encoded = encoded[n:]
	}
	b.WriteString(bundleEnd + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// ReadBundle finds the last bundle in a log and writes its files into dir,
// returning their names.
func ReadBundle(log io.Reader, dir string) ([]string, error) {
	var encoded strings.Builder
	var found, inside bool
	scanner := bufio.NewScanner(log)
	scanner.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		switch {
		case line == bundleBegin:
			encoded.Reset()
			inside = true
		case line == bundleEnd && inside:
			inside, found = false, true
		case inside:
			encoded.WriteString(line)
		}
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("reading the log: %w", err)
	}
	if !found {
		return nil, ErrNoBundle
	}
	data, err := base64.StdEncoding.DecodeString(encoded.String())
	if err != nil {
		return nil, fmt.Errorf("decoding the bundle of reports: %w", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("decoding the bundle of reports: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	var names []string
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names, nil
		}
		if err != nil {
			return names, fmt.Errorf("decoding the bundle of reports: %w", err)
		}
		if h.Typeflag != tar.TypeReg || h.Name != filepath.Base(h.Name) {
			return names, fmt.Errorf("the bundle of reports holds %q, not a plain file name", h.Name)
		}
		content, err := io.ReadAll(tr)
		if err != nil {
			return names, fmt.Errorf("decoding the bundle of reports: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, h.Name), content, 0o644); err != nil {
			return names, fmt.Errorf("writing %s: %w", h.Name, err)
		}
		names = append(names, h.Name)
	}
}
