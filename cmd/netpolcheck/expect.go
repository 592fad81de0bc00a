package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/matrix/manifest"
)

// offlineInputs are the flags shared by expect and explain.
type offlineInputs struct {
	model, policies, namespace, output string
}

func (in *offlineInputs) register(fs interface {
	StringVar(p *string, name, value, usage string)
}, outputs string) {
	fs.StringVar(&in.model, "model", "", "model file (YAML): namespaces, pods, externals")
	fs.StringVar(&in.policies, "policies", "", "NetworkPolicy manifest file, or a folder of them (multi-document YAML allowed)")
	fs.StringVar(&in.namespace, "namespace", "default", "namespace for policies that name none")
	fs.StringVar(&in.output, "output", strings.Split(outputs, "|")[0], "output format: "+outputs)
}

// engine loads the inputs and builds the engine; notes go to stderr.
func (in *offlineInputs) engine(stderr io.Writer) (*matrix.Engine, error) {
	if err := required(map[string]string{"model": in.model, "policies": in.policies}); err != nil {
		return nil, err
	}
	model, err := manifest.LoadModel(in.model)
	if err != nil {
		return nil, err
	}
	policies, err := manifest.LoadPolicies(in.policies, in.namespace)
	if err != nil {
		return nil, err
	}
	for _, n := range policies.Notes {
		fmt.Fprintf(stderr, "note: %s\n", n)
	}
	return matrix.NewEngine(model, policies.Items)
}

func runExpect(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("expect", stderr)
	var in offlineInputs
	in.register(fs, "table|json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if in.output != "table" && in.output != "json" {
		return usageError{fmt.Errorf("--output must be table or json, not %q", in.output)}
	}
	e, err := in.engine(stderr)
	if err != nil {
		return err
	}
	table := e.Table()
	w := bufio.NewWriter(stdout)
	if in.output == "json" {
		err = writeTableJSON(w, table)
	} else {
		cells, allowed := table.Count()
		_, err = fmt.Fprintf(w, "%s\n%d cells, %d allowed, %d denied (. allowed, X denied, - not served)\n", table, cells, allowed, cells-allowed)
	}
	if err != nil {
		return fmt.Errorf("writing table: %w", err)
	}
	return w.Flush()
}

// writeTableJSON writes {"cells": [...]} one cell at a time, so tables of
// millions of cells never sit in memory twice.
func writeTableJSON(w io.Writer, t *matrix.Table) error {
	if _, err := io.WriteString(w, "{\"cells\":["); err != nil {
		return err
	}
	var err error
	first := true
	t.Each(func(c matrix.Cell) bool {
		var b []byte
		b, err = json.Marshal(c)
		if err != nil {
			return false
		}
		if !first {
			_, err = io.WriteString(w, ",\n")
		} else {
			_, err = io.WriteString(w, "\n")
		}
		first = false
		if err == nil {
			_, err = w.Write(b)
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, "\n]}\n")
	return err
}

func runExplain(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("explain", stderr)
	var in offlineInputs
	in.register(fs, "text|json")
	var from, to, port, protocol string
	fs.StringVar(&from, "from", "", "source endpoint: namespace/pod or an external host's name")
	fs.StringVar(&to, "to", "", "destination endpoint: namespace/pod or an external host's name")
	fs.StringVar(&port, "port", "", "destination port number")
	fs.StringVar(&protocol, "protocol", "TCP", "TCP, UDP or SCTP")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := required(map[string]string{"from": from, "to": to, "port": port}); err != nil {
		return err
	}
	n, err := strconv.ParseInt(port, 10, 32)
	if err != nil || n < 1 || n > 65535 {
		return usageError{fmt.Errorf("--port must be a number between 1 and 65535, not %q", port)}
	}
	pp := matrix.PortProtocol{Port: int32(n), Protocol: corev1.Protocol(strings.ToUpper(protocol))}
	if in.output != "text" && in.output != "json" {
		return usageError{fmt.Errorf("--output must be text or json, not %q", in.output)}
	}
	e, err := in.engine(stderr)
	if err != nil {
		return err
	}
	x, err := e.Explain(from, to, pp)
	if err != nil {
		return err
	}
	if in.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(x)
	}
	_, err = io.WriteString(stdout, x.String())
	return err
}
