package progress

import (
	"os"
	"path/filepath"
	"testing"
)

func TestAppendAndRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "progress.jsonl")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := NewReader(f)
	if err := Append(path, Event{Suite: "recipes", Case: "R1", State: "passed", Seconds: 1.5}); err != nil {
		t.Fatal(err)
	}
	// Half a line, as a process caught mid-write would leave it.
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteString(`{"suite":"recipes","case":"R2",`); err != nil {
		t.Fatal(err)
	}
	events, err := r.Next()
	if err != nil || len(events) != 1 || events[0] != (Event{Suite: "recipes", Case: "R1", State: "passed", Seconds: 1.5}) {
		t.Fatalf("first read: %v, %+v; want R1 only", err, events)
	}
	if _, err := w.WriteString(`"state":"failed","seconds":2}` + "\n"); err != nil {
		t.Fatal(err)
	}
	events, err = r.Next()
	if err != nil || len(events) != 1 || events[0] != (Event{Suite: "recipes", Case: "R2", State: "failed", Seconds: 2}) {
		t.Fatalf("second read: %v, %+v; want the completed R2", err, events)
	}
}
