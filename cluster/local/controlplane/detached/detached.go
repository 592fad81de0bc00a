// Package detached starts long-running processes in a session of their own,
// so that they outlive the command that started them, and stops them later
// from any process. A started process is remembered by its PID together with
// its start time, so a PID that the kernel has since handed to another
// process is never signalled.
package detached

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Spec describes a process to start.
type Spec struct {
	// Name is a short label used in errors and in the recorded Process.
	Name string
	// Path is the executable; Args are its arguments (without argv[0]).
	Path string
	Args []string
	// LogFile receives the process's stdout and stderr (appended).
	LogFile string
	// Dir is the working directory; empty means the caller's.
	Dir string
}

// Process identifies a started process. It is plain data so that it can be
// stored in a state file and used by another process later.
type Process struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
	// StartTime is the process's start time in clock ticks after boot, as in
	// field 22 of /proc/PID/stat. Together with PID it identifies the process.
	StartTime uint64 `json:"startTime"`
	LogFile   string `json:"logFile"`
}

// Start starts the process in a new session with stdin from /dev/null and
// its output appended to spec.LogFile. The calling process reaps the child
// if it exits while the caller is still running; after the caller exits the
// child is adopted by init and keeps running.
func Start(spec Spec) (Process, error) {
	logFile, err := os.OpenFile(spec.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return Process{}, fmt.Errorf("opening log file of %s: %w", spec.Name, err)
	}
	defer logFile.Close()

	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Dir = spec.Dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return Process{}, fmt.Errorf("starting %s (%s): %w", spec.Name, spec.Path, err)
	}
	// Until it is waited for, the child stays in /proc even if it has
	// exited already, so its start time can be read.
	startTime, _, err := readStat(cmd.Process.Pid)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return Process{}, fmt.Errorf("reading start time of %s (pid %d): %w", spec.Name, cmd.Process.Pid, err)
	}
	// Reap the child if it exits while this process lives, so that a dead
	// component does not linger as a zombie. Its exit shows through Alive.
	go func() { _ = cmd.Wait() }()
	return Process{Name: spec.Name, PID: cmd.Process.Pid, StartTime: startTime, LogFile: spec.LogFile}, nil
}

// Alive reports whether the recorded process still runs: a process with the
// same PID and start time exists and has not exited (a zombie counts as
// exited).
func (p Process) Alive() bool {
	startTime, state, err := readStat(p.PID)
	return err == nil && startTime == p.StartTime && state != 'Z' && state != 'X'
}

// Stop sends SIGTERM to the recorded process and SIGKILL if it has not
// exited after grace, then waits until it has exited or ctx ends. A process
// that is already gone, or whose PID now belongs to another process, is left
// alone and Stop returns nil.
func (p Process) Stop(ctx context.Context, grace time.Duration) error {
	pidfd, err := unix.PidfdOpen(p.PID, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening pidfd of %s (pid %d): %w", p.Name, p.PID, err)
	}
	defer unix.Close(pidfd)
	// The pidfd pins the process that had the PID when it was opened, so
	// checking the identity after opening it rules out signalling a process
	// that took over the PID in between.
	if !p.Alive() {
		return nil
	}

	if err := unix.PidfdSendSignal(pidfd, unix.SIGTERM, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("sending SIGTERM to %s (pid %d): %w", p.Name, p.PID, err)
	}
	termCtx, cancel := context.WithTimeout(ctx, grace)
	exited, err := waitExit(termCtx, pidfd)
	cancel()
	if err != nil {
		return fmt.Errorf("waiting for %s (pid %d) to exit: %w", p.Name, p.PID, err)
	}
	if exited {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("stopping %s (pid %d): %w", p.Name, p.PID, err)
	}

	if err := unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("sending SIGKILL to %s (pid %d): %w", p.Name, p.PID, err)
	}
	exited, err = waitExit(ctx, pidfd)
	if err != nil {
		return fmt.Errorf("waiting for %s (pid %d) to exit after SIGKILL: %w", p.Name, p.PID, err)
	}
	if !exited {
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL: %w", p.Name, p.PID, ctx.Err())
	}
	return nil
}

// waitExit waits until the process behind pidfd exits (the pidfd becomes
// readable) and reports whether it did before ctx ended.
func waitExit(ctx context.Context, pidfd int) (bool, error) {
	const slice = 50 * time.Millisecond
	for {
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(slice/time.Millisecond))
		if err != nil && !errors.Is(err, unix.EINTR) {
			return false, fmt.Errorf("polling pidfd: %w", err)
		}
		if n > 0 {
			return true, nil
		}
		if ctx.Err() != nil {
			return false, nil
		}
	}
}

// readStat returns the start time (field 22) and state (field 3) of a
// process from /proc/PID/stat.
func readStat(pid int) (uint64, byte, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) is in parentheses and may contain spaces,
	// so the remaining fields are counted from the last ')'.
	text := string(data)
	end := strings.LastIndexByte(text, ')')
	if end < 0 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	fields := strings.Fields(text[end+1:])
	// fields[0] is field 3 (state); field 22 is fields[19].
	if len(fields) < 20 || len(fields[0]) != 1 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	startTime, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("parsing start time in /proc/%d/stat: %w", pid, err)
	}
	return startTime, fields[0][0], nil
}
