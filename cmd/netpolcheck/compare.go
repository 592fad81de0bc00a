package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/netpolcheck/netpolcheck/reports"
)

const compareUsage = `usage: netpolcheck compare [--markdown OUT.md] [--html OUT.html] [--name NAME=FILE ...] RESULTS...

Compares runs side by side, one column per run: RESULTS are results.json
files or JUnit XML reports (ginkgo --junit-report), told apart by content.
A run is named by --name, else by its results file (name, then CNI), else
after its file. The Markdown report goes to standard output unless
--markdown or --html is given. Failing cases do not make the command fail.

flags:
`

// namedFile is one --name NAME=FILE.
type namedFile struct{ name, file string }

// namedFiles collects repeated --name flags.
type namedFiles []namedFile

func (n *namedFiles) String() string {
	parts := make([]string, len(*n))
	for i, nf := range *n {
		parts[i] = nf.name + "=" + nf.file
	}
	return strings.Join(parts, " ")
}

func (n *namedFiles) Set(v string) error {
	name, file, ok := strings.Cut(v, "=")
	if !ok || name == "" || file == "" {
		return fmt.Errorf("want NAME=FILE, not %q", v)
	}
	*n = append(*n, namedFile{name: name, file: file})
	return nil
}

func runCompare(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("compare", stderr)
	var markdownOut, htmlOut string
	var markdownMax int
	var names namedFiles
	fs.StringVar(&markdownOut, "markdown", "", "write the Markdown report to this file (- for standard output)")
	fs.IntVar(&markdownMax, "markdown-max-bytes", 0, "keep the Markdown report under this many bytes, leaving out case rows and failure details that do not fit\n(0: no limit; a GitHub job summary over 1 MiB is not shown at all)")
	fs.StringVar(&htmlOut, "html", "", "write the self-contained HTML report to this file")
	fs.Var(&names, "name", "NAME=FILE: compare FILE under the name NAME (repeatable; FILE may be left out of RESULTS)")
	fs.Usage = func() {
		fmt.Fprint(stderr, compareUsage)
		fs.PrintDefaults()
	}
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if markdownMax < 0 {
		return usageError{fmt.Errorf("--markdown-max-bytes %d: want 0 (no limit) or more", markdownMax)}
	}
	inputs := compareInputs(files, names)
	if len(inputs) == 0 {
		return usageError{fmt.Errorf("no results given: name one or more results.json or JUnit XML files")}
	}
	runs, err := loadRuns(inputs)
	if err != nil {
		return err
	}
	cmp := reports.Compare(runs)
	if markdownOut == "" && htmlOut == "" {
		markdownOut = "-"
	}
	if htmlOut != "" {
		page, err := cmp.HTML()
		if err != nil {
			return err
		}
		if err := writeOutput(htmlOut, page, stdout); err != nil {
			return fmt.Errorf("writing the HTML report: %w", err)
		}
	}
	if markdownOut != "" {
		if err := writeOutput(markdownOut, cmp.MarkdownWithin(markdownMax), stdout); err != nil {
			return fmt.Errorf("writing the Markdown report: %w", err)
		}
	}
	return nil
}

// parseInterspersed parses flags given before, between or after the
// positional arguments, and returns the positional ones; everything after
// "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err}
		}
		rest := fs.Args()
		if stoppedAtTerminator(fs, args) {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// stoppedAtTerminator reports whether fs.Parse(args) stopped at "--",
// which it consumes, rather than at a positional argument or the end; a
// "--" that is the value of the flag before it ("--html --") is no
// terminator.
func stoppedAtTerminator(fs *flag.FlagSet, args []string) bool {
	consumed := len(args) - fs.NArg()
	if consumed == 0 || args[consumed-1] != "--" {
		return false
	}
	if consumed >= 2 && strings.HasPrefix(args[consumed-2], "-") && !strings.Contains(args[consumed-2], "=") {
		if f := fs.Lookup(strings.TrimLeft(args[consumed-2], "-")); f != nil {
			b, ok := f.Value.(interface{ IsBoolFlag() bool })
			return ok && b.IsBoolFlag()
		}
	}
	return true
}

// compareInputs lists the files to compare, in command-line order: the
// positional files, then the files named only by --name; each carries the
// name --name gave it, if any.
func compareInputs(files []string, names namedFiles) []namedFile {
	nameOf := map[string]string{}
	for _, nf := range names {
		nameOf[filepath.Clean(nf.file)] = nf.name
	}
	var inputs []namedFile
	listed := map[string]bool{}
	for _, f := range files {
		listed[filepath.Clean(f)] = true
		inputs = append(inputs, namedFile{name: nameOf[filepath.Clean(f)], file: f})
	}
	for _, nf := range names {
		if !listed[filepath.Clean(nf.file)] {
			listed[filepath.Clean(nf.file)] = true
			inputs = append(inputs, nf)
		}
	}
	return inputs
}

// loadRuns reads every input and checks that the runs' names tell them apart.
func loadRuns(inputs []namedFile) ([]*reports.Run, error) {
	runs := make([]*reports.Run, 0, len(inputs))
	fileOf := map[string]string{}
	for _, in := range inputs {
		run, err := reports.Load(in.file, in.name)
		if err != nil {
			return nil, err
		}
		if other, ok := fileOf[run.Name]; ok {
			return nil, usageError{fmt.Errorf("%s and %s are both named %q: name them with --name NAME=FILE", other, in.file, run.Name)}
		}
		fileOf[run.Name] = in.file
		runs = append(runs, run)
	}
	return runs, nil
}

// writeOutput writes content to path, or to stdout when path is "-".
func writeOutput(path, content string, stdout io.Writer) error {
	if path == "-" {
		_, err := io.WriteString(stdout, content)
		return err
	}
	return os.WriteFile(path, []byte(content), 0o644)
}
