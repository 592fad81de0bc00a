package detached

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func startForTest(t *testing.T, name string, args ...string) Process {
	t.Helper()
	proc, err := Start(Spec{
		Name:    name,
		Path:    "/bin/sh",
		Args:    args,
		LogFile: filepath.Join(t.TempDir(), name+".log"),
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = proc.Stop(context.Background(), time.Second) })
	return proc
}

func TestStartRunsInOwnSessionAndStopTerminates(t *testing.T) {
	proc := startForTest(t, "sleeper", "-c", "echo started; exec sleep 300")
	if !proc.Alive() {
		t.Fatalf("process %d not alive after Start", proc.PID)
	}
	sid, err := sessionID(proc.PID)
	if err != nil {
		t.Fatal(err)
	}
	if sid != proc.PID {
		t.Errorf("session id = %d, want the process's own pid %d", sid, proc.PID)
	}

	waitForLog(t, proc.LogFile, "started")

	start := time.Now()
	if err := proc.Stop(context.Background(), 5*time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if proc.Alive() {
		t.Fatal("process alive after Stop")
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Stop of a process that honours SIGTERM took %s", elapsed)
	}
}

func waitForLog(t *testing.T, path, text string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, err := os.ReadFile(path)
		if err == nil && strings.Contains(string(data), text) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("log file %s = %q (err %v), want it to contain %q", path, data, err, text)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStopKillsProcessThatIgnoresSIGTERM(t *testing.T) {
	// An ignored signal stays ignored across exec, so sleep ignores SIGTERM.
	proc := startForTest(t, "stubborn", "-c", "trap '' TERM; echo trapped; exec sleep 300")
	waitForLog(t, proc.LogFile, "trapped")
	start := time.Now()
	if err := proc.Stop(context.Background(), 300*time.Millisecond); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if proc.Alive() {
		t.Fatal("process alive after Stop")
	}
	if elapsed := time.Since(start); elapsed < 300*time.Millisecond {
		t.Errorf("Stop returned after %s, before the grace period ended", elapsed)
	}
}

func TestStopLeavesReusedPIDAlone(t *testing.T) {
	proc := startForTest(t, "bystander", "-c", "exec sleep 300")
	impostor := proc
	impostor.StartTime++ // the same PID, but another process
	if impostor.Alive() {
		t.Fatal("a process with another start time counts as alive")
	}
	if err := impostor.Stop(context.Background(), time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !proc.Alive() {
		t.Fatal("Stop signalled a process whose start time did not match")
	}
}

func TestStopProcessThatIsNotAChild(t *testing.T) {
	// The shell starts sleep in the background and exits, so sleep is
	// adopted by init, as the components are when `local up` returns.
	out, err := exec.Command("/bin/sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!").Output()
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	startTime, _, err := readStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	orphan := Process{Name: "orphan", PID: pid, StartTime: startTime}
	t.Cleanup(func() { _ = orphan.Stop(context.Background(), time.Second) })
	if err := orphan.Stop(context.Background(), 5*time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if orphan.Alive() {
		t.Fatal("orphan alive after Stop")
	}
}

func TestStopOfExitedProcess(t *testing.T) {
	proc := startForTest(t, "short", "-c", "exit 0")
	deadline := time.Now().Add(5 * time.Second)
	for proc.Alive() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if proc.Alive() {
		t.Fatal("process that exited still counts as alive")
	}
	if err := proc.Stop(context.Background(), time.Second); err != nil {
		t.Fatalf("Stop of an exited process: %v", err)
	}
}

func TestStartReportsMissingExecutable(t *testing.T) {
	_, err := Start(Spec{Name: "ghost", Path: "/nonexistent/ghost", LogFile: filepath.Join(t.TempDir(), "ghost.log")})
	if err == nil || !strings.Contains(err.Error(), "ghost") {
		t.Fatalf("Start of a missing executable: err = %v, want an error naming it", err)
	}
}

// sessionID returns field 6 of /proc/PID/stat.
func sessionID(pid int) (int, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(string(data)[strings.LastIndexByte(string(data), ')')+1:])
	return strconv.Atoi(fields[3])
}
