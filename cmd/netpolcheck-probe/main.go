// Command netpolcheck-probe is the probe agent: the process every probe pod
// runs (serve) and the client that probes from inside a source endpoint
// (connect for one probe, batch for a whole matrix row).
//
//	netpolcheck-probe serve --identity NS/POD [--container NAME] --port 80/TCP --port 81/UDP ...
//	netpolcheck-probe serve --identity NS/POD --port 80,81/TCP,UDP,SCTP
//	netpolcheck-probe connect --host H --port P --protocol TCP|UDP|SCTP|ICMP|DNS [--expect NS/POD] [--timeout 1s]
//	netpolcheck-probe batch [--workers N] < probes.json
//	netpolcheck-probe ready --port 80/TCP --port 81/UDP ... [--timeout 1s]
//	netpolcheck-probe idle
//
// connect and batch resolve names with the system's resolver, or, given
// --dns-server ADDR and --dns-search a,b,c (defaults: $NETPOLCHECK_DNS_SERVER
// and $NETPOLCHECK_DNS_SEARCH), through that server with that search list,
// as a pod's resolv.conf says (see prober.Resolver): local pod processes
// share this machine's /etc/resolv.conf, so the local cluster passes a pod's
// DNS settings this way. A DNS probe only resolves its host.
//
// serve prints "ready" on standard output once every port listens and stops
// on SIGTERM or SIGINT. connect prints one JSON result and exits 0 whenever
// the probe ran, whatever its outcome. batch reads a JSON array of probes on
// standard input and writes one JSON result per line. ready probes each
// port on 127.0.0.1, one after the other, and exits 0 when every one answers (with
// any identity), 1 naming those that do not: it is the exec readiness probe
// of the suites' pods, which shares the pod's network namespace and so
// never crosses the node-to-pod path that policies may block. idle waits for SIGTERM
// or SIGINT: it is what a container runs that only probes out (kube exec
// runs batch beside it) and serves nothing.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/netpolcheck/netpolcheck/matrix"
	"github.com/netpolcheck/netpolcheck/probes/batch"
	"github.com/netpolcheck/netpolcheck/probes/prober"
	"github.com/netpolcheck/netpolcheck/probes/sctp"
	"github.com/netpolcheck/netpolcheck/probes/server"
)

// errUsage marks command-line mistakes (exit code 2).
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "netpolcheck-probe:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: netpolcheck-probe serve|connect|batch|ready|idle [flags]", errUsage)
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "connect":
		return connect(ctx, args[1:], stdout, stderr)
	case "batch":
		return runBatch(ctx, args[1:], stdin, stdout, stderr)
	case "ready":
		return ready(ctx, args[1:], stdout, stderr)
	case "idle":
		if err := parse(newFlagSet("idle", stderr), args[1:]); err != nil {
			return err
		}
		<-ctx.Done()
		return nil
	}
	return fmt.Errorf("%w: unknown command %q (want serve, connect, batch, ready or idle)", errUsage, args[0])
}

// portFlags collects repeated --port values.
type portFlags []server.Port

func (p *portFlags) String() string { return fmt.Sprint(*p) }

func (p *portFlags) Set(v string) error {
	ports, err := server.ParsePortSpec(v)
	if err != nil {
		return err
	}
	*p = append(*p, ports...)
	return nil
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %s: %w", errUsage, fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: %s: unexpected arguments %q", errUsage, fs.Name(), fs.Args())
	}
	return nil
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	identity := fs.String("identity", "", "endpoint name to answer with: NAMESPACE/POD, or an external host's name")
	container := fs.String("container", "", "container name to answer with (default serve-PORT-PROTOCOL)")
	sctpMode := fs.String("sctp", string(sctp.Auto), "SCTP implementation: auto, kernel or userspace")
	var ports portFlags
	fs.Var(&ports, "port", "PORT[,PORT...][/PROTO[,PROTO...]][=CONTAINER] to serve (repeatable)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *identity == "" || len(ports) == 0 {
		return fmt.Errorf("%w: serve needs --identity and at least one --port", errUsage)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	cfg := server.Config{Identity: *identity, Container: *container, Ports: ports, SCTPMode: sctp.Mode(*sctpMode), Log: log}
	return server.Serve(ctx, cfg, func() {
		log.Info("serving", "identity", *identity, "ports", ports.String())
		fmt.Fprintln(stdout, "ready")
	})
}

// dnsFlags registers --dns-server and --dns-search and returns the resolver
// they describe once the flags are parsed (nil: the system's resolver).
func dnsFlags(fs *flag.FlagSet) func() *prober.Resolver {
	server := fs.String("dns-server", os.Getenv(prober.EnvDNSServer), "DNS server to resolve names with (default: the system's resolver)")
	search := fs.String("dns-search", os.Getenv(prober.EnvDNSSearch), "comma-separated search list for --dns-server")
	return func() *prober.Resolver { return prober.NewResolver(*server, *search) }
}

func connect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("connect", stderr)
	host := fs.String("host", "", "destination IP address or DNS name")
	port := fs.Int("port", 0, "destination port (not for ICMP and DNS)")
	protocol := fs.String("protocol", "TCP", "TCP, UDP, SCTP, ICMP or DNS (resolve the host only)")
	expect := fs.String("expect", "", "identity the destination must answer with (NAMESPACE/POD); empty accepts any")
	timeout := fs.Duration("timeout", time.Second, "probe timeout")
	sctpMode := fs.String("sctp", string(sctp.Auto), "SCTP implementation: auto, kernel or userspace")
	resolver := dnsFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *host == "" {
		return fmt.Errorf("%w: connect needs --host", errUsage)
	}
	p := prober.New(sctp.Mode(*sctpMode))
	p.Resolver = resolver()
	result := p.Run(ctx, matrix.Probe{
		Host:          *host,
		Port:          int32(*port),
		Protocol:      corev1.Protocol(strings.ToUpper(*protocol)),
		Expect:        *expect,
		TimeoutMillis: timeout.Milliseconds(),
	})
	closeErr := p.Close()
	if err := json.NewEncoder(stdout).Encode(result); err != nil {
		return fmt.Errorf("writing the result: %w", err)
	}
	if closeErr != nil {
		return fmt.Errorf("closing the SCTP stack: %w", closeErr)
	}
	return nil
}

func runBatch(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("batch", stderr)
	workers := fs.Int("workers", batch.DefaultWorkers, "probes run at once")
	sctpMode := fs.String("sctp", string(sctp.Auto), "SCTP implementation: auto, kernel or userspace")
	resolver := dnsFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	p := prober.New(sctp.Mode(*sctpMode))
	p.Resolver = resolver()
	err := batch.Run(ctx, stdin, stdout, p.Run, *workers)
	if closeErr := p.Close(); err == nil && closeErr != nil {
		err = fmt.Errorf("closing the SCTP stack: %w", closeErr)
	}
	return err
}

// readyHost is where ready probes the ports: the pod's own loopback.
const readyHost = "127.0.0.1"

func ready(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ready", stderr)
	timeout := fs.Duration("timeout", time.Second, "timeout of each port's probe")
	sctpMode := fs.String("sctp", string(sctp.Auto), "SCTP implementation: auto, kernel or userspace")
	var ports portFlags
	fs.Var(&ports, "port", "PORT[,PORT...][/PROTO[,PROTO...]] that must answer (repeatable)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if len(ports) == 0 {
		return fmt.Errorf("%w: ready needs at least one --port", errUsage)
	}
	pps := make([]matrix.PortProtocol, len(ports))
	for i, p := range ports {
		pps[i] = matrix.PortProtocol{Port: p.Port, Protocol: p.Protocol}
	}
	p := prober.New(sctp.Mode(*sctpMode))
	err := p.Listening(ctx, readyHost, pps, *timeout)
	if closeErr := p.Close(); err == nil && closeErr != nil {
		err = fmt.Errorf("closing the SCTP stack: %w", closeErr)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "ready")
	return nil
}
