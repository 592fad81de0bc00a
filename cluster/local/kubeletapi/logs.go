package kubeletapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// followPoll is how often a followed log is checked for new entries.
const followPoll = 100 * time.Millisecond

// CRI log stream names and tags.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
	tagPartial   = "P"
	tagFull      = "F"
)

// FormatEntry formats one CRI log entry: a line of output (without its
// newline, partial when the output did not end it).
func FormatEntry(t time.Time, stream string, text []byte, partial bool) []byte {
	tag := tagFull
	if partial {
		tag = tagPartial
	}
	out := make([]byte, 0, len(text)+48)
	out = t.UTC().AppendFormat(out, time.RFC3339Nano)
	out = append(out, ' ')
	out = append(out, stream...)
	out = append(out, ' ')
	out = append(out, tag...)
	out = append(out, ' ')
	out = append(out, text...)
	return append(out, '\n')
}

// entry is one parsed CRI log entry.
type entry struct {
	time    time.Time
	stream  string
	partial bool
	text    string
}

func parseEntry(line string) (entry, error) {
	parts := strings.SplitN(strings.TrimSuffix(line, "\n"), " ", 4)
	if len(parts) < 3 {
		return entry{}, fmt.Errorf("malformed log entry %q", line)
	}
	t, err := time.Parse(time.RFC3339Nano, parts[0])
	if err != nil {
		return entry{}, fmt.Errorf("log entry time: %w", err)
	}
	e := entry{time: t, stream: parts[1], partial: parts[2] == tagPartial}
	if len(parts) == 4 {
		e.text = parts[3]
	}
	return e, nil
}

// logQuery is what a containerLogs request asks for.
type logQuery struct {
	follow, timestamps bool
	tail               int64 // < 0: all
	since              time.Time
	limitBytes         int64 // 0: no limit
	stdout, stderr     bool
}

// parseLogQuery reads the kubelet's containerLogs parameters: those of
// PodLogOptions (follow, previous, timestamps, tailLines, sinceSeconds,
// sinceTime, limitBytes, stream) and the kubelet's own "tail" ("all": no
// limit). It returns whether the previous run's log is asked for.
func parseLogQuery(r *http.Request) (bool, logQuery, error) {
	v := r.URL.Query()
	q := logQuery{tail: -1, stdout: true, stderr: true}
	var previous bool
	for name, dst := range map[string]*bool{"follow": &q.follow, "previous": &previous, "timestamps": &q.timestamps} {
		if s := v.Get(name); s != "" {
			b, err := strconv.ParseBool(s)
			if err != nil {
				return false, q, fmt.Errorf("%s: %w", name, err)
			}
			*dst = b
		}
	}
	tail := v.Get("tailLines")
	if t := v.Get("tail"); t != "" && t != "all" {
		tail = t
	}
	var sinceSeconds int64
	for name, p := range map[string]struct {
		value string
		dst   *int64
	}{"tailLines": {tail, &q.tail}, "limitBytes": {v.Get("limitBytes"), &q.limitBytes}, "sinceSeconds": {v.Get("sinceSeconds"), &sinceSeconds}} {
		if p.value == "" {
			continue
		}
		n, err := strconv.ParseInt(p.value, 10, 64)
		if err != nil || n < 0 || (n == 0 && name != "tailLines") {
			return false, q, fmt.Errorf("%s must be a positive number, not %q", name, p.value)
		}
		*p.dst = n
	}
	sinceTime := v.Get("sinceTime")
	switch {
	case sinceSeconds > 0 && sinceTime != "":
		return false, q, errors.New("at most one of sinceSeconds and sinceTime")
	case sinceSeconds > 0:
		q.since = time.Now().Add(-time.Duration(sinceSeconds) * time.Second)
	case sinceTime != "":
		t, err := time.Parse(time.RFC3339, sinceTime)
		if err != nil {
			return false, q, fmt.Errorf("sinceTime: %w", err)
		}
		q.since = t
	}
	switch v.Get("stream") {
	case corev1.LogStreamStdout:
		q.stderr = false
	case corev1.LogStreamStderr:
		q.stdout = false
	case corev1.LogStreamAll, "":
	default:
		return false, q, fmt.Errorf("unknown log stream %q", v.Get("stream"))
	}
	return previous, q, nil
}

func serveLogs(w http.ResponseWriter, r *http.Request, rt Runtime, log *slog.Logger) {
	previous, q, err := parseLogQuery(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ref := refOf(r)
	file, err := rt.LogFile(ref, previous)
	if errors.Is(err, ErrNotFound) {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f, err := os.Open(file.Path)
	if err != nil {
		http.Error(w, fmt.Sprintf("container %s: opening its log: %v", ref, err), http.StatusBadRequest)
		return
	}
	defer f.Close()
	// What the log holds now is what tail and the first read select; what
	// is written from here on is followed, even if it lands before the
	// first read gets there.
	st, err := f.Stat()
	if err != nil {
		http.Error(w, fmt.Sprintf("container %s: reading its log: %v", ref, err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Transfer-Encoding", "chunked")
	w.WriteHeader(http.StatusOK)
	// A followed log may have nothing to say for a while: send the headers.
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	if err := writeLog(r.Context(), flushWriter{w}, f, st.Size(), file.Done, q); err != nil && r.Context().Err() == nil {
		log.Warn("serving container log", "container", ref.String(), "err", err)
	}
}

// flushWriter flushes every write, so a followed log arrives as written.
type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
	return n, err
}

// errLimit ends a log once limitBytes are written.
var errLimit = errors.New("byte limit reached")

// writeLog writes the entries of the log in f that q selects: the last
// q.tail of those in its first size bytes (what it held when asked), then,
// when following, every later one until done is closed and everything is
// read, or ctx ends.
func writeLog(ctx context.Context, w io.Writer, f io.Reader, size int64, done <-chan struct{}, q logQuery) error {
	r := bufio.NewReader(io.LimitReader(f, size))
	var written int64
	emit := func(e entry) error {
		if !q.since.IsZero() && e.time.Before(q.since) {
			return nil
		}
		if (e.stream == StreamStdout && !q.stdout) || (e.stream == StreamStderr && !q.stderr) {
			return nil
		}
		var b strings.Builder
		if q.timestamps {
			b.WriteString(e.time.UTC().Format(time.RFC3339Nano))
			b.WriteByte(' ')
		}
		b.WriteString(e.text)
		if !e.partial {
			b.WriteByte('\n')
		}
		out := b.String()
		if q.limitBytes > 0 && written+int64(len(out)) > q.limitBytes {
			out = out[:q.limitBytes-written]
		}
		n, err := io.WriteString(w, out)
		written += int64(n)
		if err != nil {
			return err
		}
		if q.limitBytes > 0 && written >= q.limitBytes {
			return errLimit
		}
		return nil
	}
	// What is there already, of which the last q.tail entries.
	var existing []entry
	pending := ""
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			pending = line
			break
		}
		e, perr := parseEntry(line)
		if perr != nil {
			return perr
		}
		existing = append(existing, e)
	}
	if q.tail >= 0 && int64(len(existing)) > q.tail {
		existing = existing[int64(len(existing))-q.tail:]
	}
	for _, e := range existing {
		if err := emit(e); err != nil {
			return ignoreLimit(err)
		}
	}
	if !q.follow {
		return nil
	}
	// The limited reader read exactly size bytes of f: go on from there.
	r = bufio.NewReader(f)
	ticker := time.NewTicker(followPoll)
	defer ticker.Stop()
	finished := false
	for {
		line, err := r.ReadString('\n')
		pending += line
		if err == nil {
			e, perr := parseEntry(pending)
			pending = ""
			if perr != nil {
				return perr
			}
			if err := emit(e); err != nil {
				return ignoreLimit(err)
			}
			continue
		}
		if !errors.Is(err, io.EOF) {
			return err
		}
		if finished {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-done:
			// Read what was written before the end once more, then stop.
			finished = true
		case <-ticker.C:
		}
	}
}

func ignoreLimit(err error) error {
	if errors.Is(err, errLimit) {
		return nil
	}
	return err
}
