// Package cmdline holds what the reference CNI's node commands share: flag
// parsing and their logger.
package cmdline

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
)

// Parse parses args, rejecting positional arguments. help reports that -h
// was asked for (the usage is printed already): the command should exit 0.
func Parse(flags *flag.FlagSet, args []string) (help bool, err error) {
	if err := flags.Parse(args); errors.Is(err, flag.ErrHelp) {
		return true, nil
	} else if err != nil {
		return false, err
	}
	if flags.NArg() > 0 {
		return false, fmt.Errorf("unexpected arguments %v", flags.Args())
	}
	return false, nil
}

// Logger returns a text logger on stderr, at debug level when verbose.
func Logger(verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}
