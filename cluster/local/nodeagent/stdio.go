package nodeagent

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/netpolcheck/netpolcheck/cluster/local/kubeletapi"
)

// containerLog is the log of one run of a container: its stdout and stderr
// in the CRI format, as a kubelet writes them to
// /var/log/pods/NAMESPACE_POD_UID/CONTAINER/RESTARTS.log, and the same
// output, raw, to every attached client.
type containerLog struct {
	mu       sync.Mutex
	file     *os.File
	attached map[*attachment]struct{}
	// holding: the output is kept in held until a client attaches (see
	// holdUntilAttached).
	holding bool
	held    []heldOutput
	heldLen int
}

// heldOutput is output of one stream kept for the first attached client.
type heldOutput struct {
	stream string
	data   []byte
}

// maxHeldOutput bounds the output kept for a client that has not attached
// yet; more is in the log only.
const maxHeldOutput = 1 << 20

// attachment receives a container's output while a client is attached.
type attachment struct {
	stdout, stderr io.Writer // nil: not wanted
}

// writer is where the attachment wants the output of stream (nil: nowhere).
func (a *attachment) writer(stream string) io.Writer {
	if stream == kubeletapi.StreamStderr {
		return a.stderr
	}
	return a.stdout
}

// logPath is the log of the run that follows restarts earlier ones.
func logPath(containerDir string, restarts int) string {
	return filepath.Join(containerDir, fmt.Sprintf("%d.log", restarts))
}

func openContainerLog(path string) (*containerLog, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	return &containerLog{file: f, attached: map[*attachment]struct{}{}}, nil
}

func (l *containerLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.file.Close()
}

// holdUntilAttached keeps the output (up to maxHeldOutput) until the first
// client attaches, which gets it first, less what a read of the log gave a
// client before (logRead): a stdin-once container, as kubectl run -i
// creates, shows all its output to kubectl once, also what it wrote before
// kubectl attached.
func (l *containerLog) holdUntilAttached() {
	l.mu.Lock()
	l.holding = true
	l.mu.Unlock()
}

// logRead says that a client is reading the log now (kubectl run -i reads
// it before it attaches): what it holds is what the client gets from the
// file, so the first attach gets only what follows. A container runtime
// such as containerd holds nothing: output written between the read and the
// attach reaches neither.
func (l *containerLog) logRead() {
	l.mu.Lock()
	l.held, l.heldLen = nil, 0
	l.mu.Unlock()
}

func (l *containerLog) attach(a *attachment) func() {
	l.mu.Lock()
	for _, h := range l.held {
		if out := a.writer(h.stream); out != nil {
			_, _ = out.Write(h.data)
		}
	}
	l.holding, l.held, l.heldLen = false, nil, 0
	l.attached[a] = struct{}{}
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		delete(l.attached, a)
		l.mu.Unlock()
	}
}

// stream returns the writer of one of the container's output streams;
// onLine, when set, sees every complete line.
func (l *containerLog) stream(name string, onLine func(string)) io.Writer {
	return &streamWriter{log: l, name: name, onLine: onLine}
}

// streamWriter splits one output stream into CRI log entries: one per
// line, and a partial one for output that has not ended its line when a
// write returns.
type streamWriter struct {
	log    *containerLog
	name   string
	onLine func(string)
	line   []byte // the start of a line a previous write left open
}

func (w *streamWriter) Write(p []byte) (int, error) {
	now := time.Now()
	var entries []byte
	rest := p
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			entries = append(entries, kubeletapi.FormatEntry(now, w.name, rest, true)...)
			w.line = append(w.line, rest...)
			break
		}
		entries = append(entries, kubeletapi.FormatEntry(now, w.name, rest[:i], false)...)
		if w.onLine != nil {
			w.onLine(string(append(w.line, rest[:i]...)))
		}
		w.line = w.line[:0]
		rest = rest[i+1:]
	}
	l := w.log
	l.mu.Lock()
	defer l.mu.Unlock()
	for a := range l.attached {
		if out := a.writer(w.name); out != nil {
			_, _ = out.Write(p) // a client that went away is detached by its session
		}
	}
	if l.holding && l.heldLen+len(p) <= maxHeldOutput {
		l.held = append(l.held, heldOutput{stream: w.name, data: bytes.Clone(p)})
		l.heldLen += len(p)
	}
	if _, err := l.file.Write(entries); err != nil {
		return 0, err
	}
	return len(p), nil
}
