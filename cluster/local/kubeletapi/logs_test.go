package kubeletapi

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// Following a log with tailLines=0 sends every entry written after the
// request, also one written before the first read got to the end of the
// file: only what the log held when asked counts as already there. (The
// kubelet API test once hung on that race: the entry came with the file and
// was cut by the tail.)
func TestFollowSendsEntriesWrittenAfterTheRequest(t *testing.T) {
	at := time.Now()
	held := string(FormatEntry(at, StreamStdout, []byte("one"), false)) + string(FormatEntry(at, StreamStdout, []byte("two"), false))
	later := string(FormatEntry(at, StreamStdout, []byte("four"), false))
	done := make(chan struct{})
	close(done)
	var out bytes.Buffer
	q := logQuery{follow: true, tail: 0, stdout: true, stderr: true}
	if err := writeLog(context.Background(), &out, strings.NewReader(held+later), int64(len(held)), done, q); err != nil {
		t.Fatal(err)
	}
	if out.String() != "four\n" {
		t.Errorf("followed %q, want %q", out.String(), "four\n")
	}
}
