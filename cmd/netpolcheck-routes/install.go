package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// runInstall implements "netpolcheck-routes install-cni": the DaemonSet's
// init container uses it to put the plugin into the node's /opt/cni/bin,
// since the image has no shell or cp.
func runInstall(args []string) error {
	flags := flag.NewFlagSet("netpolcheck-routes install-cni", flag.ContinueOnError)
	from := flags.String("from", "/netpolcheck-cni", "plugin binary to install")
	to := flags.String("to", "/host/opt/cni/bin", "CNI binary directory to install it into")
	if err := flags.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	if err := installFile(*from, *to); err != nil {
		return err
	}
	fmt.Printf("installed %s into %s\n", *from, *to)
	return nil
}

// installFile copies src into dir under its own name through a temporary
// file that is renamed into place, so a runtime executing the plugin
// meanwhile runs the old or the new binary, never a partial one (and a
// running binary is never overwritten in place).
func installFile(src, dir string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("installing %s: %w", src, err)
	}
	defer in.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("installing %s: %w", src, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(src)+"-*")
	if err != nil {
		return fmt.Errorf("installing %s: %w", src, err)
	}
	_, copyErr := io.Copy(tmp, in)
	if err := errors.Join(copyErr, tmp.Chmod(0o755), tmp.Close()); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("installing %s into %s: %w", src, dir, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, filepath.Base(src))); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("installing %s into %s: %w", src, dir, err)
	}
	return nil
}
