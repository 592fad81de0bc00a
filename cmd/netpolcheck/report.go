package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/netpolcheck/netpolcheck/reports"
)

// runReport turns a run's JUnit report into results.json and a Markdown
// summary (per-label pass counts, time-to-converge figures, failures).
func runReport(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("report", stderr)
	junit := fs.String("junit", "", "the run's JUnit report (ginkgo --junit-report), or a results.json")
	out := fs.String("out", "", "directory for results.json and summary.md (default: the report's directory)")
	name := fs.String("name", "", "name of the run in comparisons (default: the CNI)")
	cni := fs.String("cni", "", "CNI under test")
	provider := fs.String("provider", "", "cluster provider: local, kind, existing")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := required(map[string]string{"junit": *junit}); err != nil {
		return err
	}
	if *out == "" {
		*out = filepath.Dir(*junit)
	}
	run, err := reports.Load(*junit, *name)
	if err != nil {
		return err
	}
	if *cni != "" {
		run.CNI = *cni
	}
	if *provider != "" {
		run.Provider = *provider
	}
	switch {
	case *name != "":
		run.Name = *name
	case run.CNI != "":
		run.Name = run.CNI
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", *out, err)
	}
	if err := run.Write(filepath.Join(*out, "results.json")); err != nil {
		return err
	}
	summary := reports.Summary(run)
	if err := os.WriteFile(filepath.Join(*out, "summary.md"), []byte(summary), 0o644); err != nil {
		return fmt.Errorf("writing the summary: %w", err)
	}
	_, err = io.WriteString(stdout, summary)
	return err
}
