// Package batch is the batch protocol between a transport and `netpolcheck-probe
// batch` running in the source endpoint: the transport writes a JSON array of
// matrix.Probe to the agent's standard input, the agent runs them all
// concurrently and writes one JSON matrix.Result per line to its standard
// output as each finishes. Run is the agent's side; Exchange is the side
// every transport shares, whatever carries the streams (a local process in a
// network namespace, a kube exec session).
package batch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/netpolcheck/netpolcheck/matrix"
)

// DefaultWorkers is the default number of probes run at once: enough for a
// whole matrix row (upstream's 81 pods x 2 ports x 3 protocols) to run at
// the same time, so a row of denials costs one probe timeout.
const DefaultWorkers = 256

// ProbeFunc runs one probe; prober.Prober.Run is the real one.
type ProbeFunc func(context.Context, matrix.Probe) matrix.Result

// Run reads the probes from r, runs them with at most workers at once, each
// bounded by its own timeout, and writes each result as one JSON line to w
// as soon as it is known. It returns after every probe has finished.
func Run(ctx context.Context, r io.Reader, w io.Writer, probe ProbeFunc, workers int) error {
	var probes []matrix.Probe
	if err := json.NewDecoder(r).Decode(&probes); err != nil {
		return fmt.Errorf("reading the probes (a JSON array) from standard input: %w", err)
	}
	if workers < 1 {
		workers = DefaultWorkers
	}
	var (
		mu       sync.Mutex
		enc      = json.NewEncoder(w)
		writeErr error
		wg       sync.WaitGroup
		slots    = make(chan struct{}, workers)
	)
	for _, p := range probes {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			res := probe(ctx, p)
			mu.Lock()
			defer mu.Unlock()
			if err := enc.Encode(res); err != nil && writeErr == nil {
				writeErr = fmt.Errorf("writing result %d: %w", res.ID, err)
			}
		}()
	}
	wg.Wait()
	return writeErr
}

// Streams runs a `netpolcheck-probe batch` agent somewhere, connected to the
// given standard streams, and returns when it has exited.
type Streams func(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) error

// Exchange sends probes to an agent started by run and collects one result
// per probe. Probes the agent did not answer (it crashed, was killed, its
// output was cut) get an Error result saying why. Exchange fails as a whole
// only when the agent produced no result at all.
func Exchange(ctx context.Context, probes []matrix.Probe, run Streams) ([]matrix.Result, error) {
	if len(probes) == 0 {
		return nil, nil
	}
	input, err := json.Marshal(probes)
	if err != nil {
		return nil, fmt.Errorf("encoding %d probes: %w", len(probes), err)
	}
	var stdout, stderr bytes.Buffer
	runErr := run(ctx, bytes.NewReader(input), &stdout, &limitedBuffer{max: 4096, buf: &stderr})

	wanted := make(map[int]bool, len(probes))
	for _, p := range probes {
		wanted[p.ID] = true
	}
	results := make([]matrix.Result, 0, len(probes))
	var decodeErr error
	scanner := bufio.NewScanner(&stdout)
	scanner.Buffer(make([]byte, 64*1024), 1024*1024)
	for scanner.Scan() {
		line := bytes.TrimSpace(scanner.Bytes())
		if len(line) == 0 {
			continue
		}
		var r matrix.Result
		if err := json.Unmarshal(line, &r); err != nil {
			decodeErr = fmt.Errorf("agent wrote a line that is not a result: %q: %w", truncate(string(line)), err)
			continue
		}
		if wanted[r.ID] {
			delete(wanted, r.ID) // the first result of an ID counts
			results = append(results, r)
		}
	}
	problem := describe(runErr, decodeErr, stderr.String())
	if len(results) == 0 {
		if problem == "" {
			problem = "the agent wrote no results"
		}
		return nil, fmt.Errorf("probe batch of %d probes: %s", len(probes), problem)
	}
	for _, p := range probes {
		if wanted[p.ID] {
			results = append(results, matrix.Result{ID: p.ID, Outcome: matrix.Error, Detail: "no result from the probe agent: " + problem})
		}
	}
	return results, nil
}

func describe(runErr, decodeErr error, stderr string) string {
	var parts []string
	if runErr != nil {
		parts = append(parts, runErr.Error())
	}
	if decodeErr != nil {
		parts = append(parts, decodeErr.Error())
	}
	if s := strings.TrimSpace(stderr); s != "" {
		parts = append(parts, "stderr: "+truncate(s))
	}
	return strings.Join(parts, "; ")
}

func truncate(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// limitedBuffer keeps the first max bytes written and discards the rest, so
// a chatty agent cannot grow memory without bound.
type limitedBuffer struct {
	max int
	buf *bytes.Buffer
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
