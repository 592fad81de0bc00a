package reports

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Load reads a results.json file (gzipped or not) or a JUnit XML file, told
// apart by their first bytes ('{', gzip's magic number or '<') or, failing
// that, by extension. The run is
// named name when it is not empty; otherwise a results file keeps its name
// (or its CNI's), and a JUnit file is named after the file.
func Load(path, name string) (*Run, error) {
	xmlFile, err := isXML(path)
	if err != nil {
		return nil, err
	}
	if xmlFile {
		return ReadJUnit(path, name)
	}
	run, err := ReadRun(path)
	if err != nil {
		return nil, err
	}
	switch {
	case name != "":
		run.Name = name
	case run.Name == "" && run.CNI != "":
		run.Name = run.CNI
	case run.Name == "":
		run.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	return run, nil
}

// isXML sniffs the file's first non-blank character, falling back to its
// extension when the file starts with neither '<' nor '{'.
func isXML(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("reading results: %w", err)
	}
	defer f.Close()
	head := make([]byte, 512)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return false, fmt.Errorf("reading results: %w", err)
	}
	if isGzip(head[:n]) {
		return false, nil // a gzipped results.json
	}
	head = bytes.TrimLeft(bytes.TrimPrefix(head[:n], []byte("\xef\xbb\xbf")), " \t\r\n")
	switch {
	case bytes.HasPrefix(head, []byte("<")):
		return true, nil
	case bytes.HasPrefix(head, []byte("{")):
		return false, nil
	case strings.EqualFold(filepath.Ext(path), ".xml"):
		return true, nil
	case strings.EqualFold(filepath.Ext(path), ".json"):
		return false, nil
	}
	return false, fmt.Errorf("%s: neither a results.json file nor a JUnit XML report", path)
}
