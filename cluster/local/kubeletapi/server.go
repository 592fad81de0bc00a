// Package kubeletapi serves the part of the kubelet's HTTPS API that the API
// server proxies to: exec, attach, port-forward and container logs, at the
// kubelet's own paths (/exec/NAMESPACE/POD/[UID/]CONTAINER, /attach/...,
// /portForward/NAMESPACE/POD[/UID], /containerLogs/NAMESPACE/POD/CONTAINER),
// plus /healthz.
//
// The streaming protocols are the kubelet's, from k8s.io/cri-streaming:
// SPDY (v1 to v4.channel.k8s.io, portforward.k8s.io) and the WebSocket
// protocols before v5 (channel.k8s.io, base64.channel.k8s.io and their v4
// variants). Nodes declare no ExtendWebSocketsToKubelet feature, so the API
// server translates a client's v5.channel.k8s.io WebSocket (and port-forward
// over WebSocket) to SPDY before it reaches this server, as it does for
// every kubelet that does not declare the feature.
//
// Clients authenticate as they do at a kubelet started with
// --client-ca-file and without anonymous authentication: with a certificate
// of the client CA. Only the users in Config.AllowedUsers (the API server's
// kubelet client) are authorized; any other certificate gets 403 Forbidden
// and a request without one 401 Unauthorized.
//
// What runs the containers is behind Runtime, which the node agent
// implements.
package kubeletapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

// Port is the kubelet's API port.
const Port = 10250

// Timeouts of streaming sessions, the kubelet's defaults.
const (
	idleTimeout           = 4 * time.Hour
	streamCreationTimeout = remotecommand.DefaultStreamCreationTimeout
)

// ErrNotFound is returned by a Runtime for an unknown pod or container.
var ErrNotFound = errors.New("not found")

// ContainerRef names a container of a pod. UID is empty when the request
// does not name one.
type ContainerRef struct {
	Namespace, Pod string
	UID            types.UID
	Container      string
}

func (r ContainerRef) String() string { return r.Namespace + "/" + r.Pod + "/" + r.Container }

// Streams are the streams of an exec or attach session: nil when the client
// did not ask for one. With TTY, Stderr is nil and Resize delivers the
// client's terminal sizes.
type Streams struct {
	Stdin          io.Reader
	Stdout, Stderr io.WriteCloser
	TTY            bool
	Resize         <-chan remotecommand.TerminalSize
}

// LogFile is a container's log in the CRI format (one
// "TIMESTAMP STREAM P|F TEXT" entry per line).
type LogFile struct {
	Path string
	// Done is closed once nothing more is written to the file (the
	// container run it belongs to ended).
	Done <-chan struct{}
}

// Runtime runs the node's containers.
type Runtime interface {
	// Exec runs cmd in the container. A command that ran and exited
	// non-zero is reported as a k8s.io/utils/exec.ExitError.
	Exec(ctx context.Context, ref ContainerRef, cmd []string, s Streams) error
	// Attach connects the streams to the container's main process until it
	// exits or ctx ends.
	Attach(ctx context.Context, ref ContainerRef, s Streams) error
	// PortForward copies stream to and from a connection to port in the
	// pod's network namespace.
	PortForward(ctx context.Context, pod ContainerRef, port int32, stream io.ReadWriteCloser) error
	// LogFile returns the log of the container's current run, or of the
	// run before it when previous is set.
	LogFile(ref ContainerRef, previous bool) (LogFile, error)
}

// Config configures a Server.
type Config struct {
	// Listen is the address to serve on, such as NODE_IP:10250.
	Listen string
	// Certificate is the serving certificate.
	Certificate tls.Certificate
	// ClientCAs verify client certificates.
	ClientCAs *x509.CertPool
	// AllowedUsers are the common names allowed to use the API.
	AllowedUsers []string
	Runtime      Runtime
	Log          *slog.Logger
}

// Server is a running kubelet API.
type Server struct {
	listener net.Listener
	http     *http.Server
}

// Serve starts serving; the server stops when ctx ends.
func Serve(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Runtime == nil || cfg.ClientCAs == nil || len(cfg.AllowedUsers) == 0 {
		return nil, errors.New("kubelet API: a runtime, client CAs and allowed users are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	l, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("kubelet API: %w", err)
	}
	tlsConfig := &tls.Config{
		Certificates: []tls.Certificate{cfg.Certificate},
		ClientCAs:    cfg.ClientCAs,
		// Verified when given; a request without one is refused in the
		// handler with 401, as the kubelet answers anonymous requests.
		ClientAuth: tls.VerifyClientCertIfGiven,
		MinVersion: tls.VersionTLS12,
		// SPDY upgrades need HTTP/1.1.
		NextProtos: []string{"http/1.1"},
	}
	s := &Server{listener: l, http: &http.Server{
		Handler:           authorize(cfg.AllowedUsers, newMux(cfg.Runtime, cfg.Log)),
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(cfg.Log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}}
	go func() {
		if err := s.http.ServeTLS(l, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Log.Error("kubelet API stopped", "err", err)
		}
	}()
	context.AfterFunc(ctx, func() { s.http.Close() })
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// authorize lets only requests with a verified client certificate of an
// allowed user through.
func authorize(users []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		user := r.TLS.VerifiedChains[0][0].Subject.CommonName
		if !slices.Contains(users, user) {
			http.Error(w, fmt.Sprintf("Forbidden (user=%s, verb=%s, path=%s)", user, r.Method, r.URL.Path), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func newMux(rt Runtime, log *slog.Logger) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	exec := func(w http.ResponseWriter, r *http.Request) { serveExec(w, r, rt) }
	attach := func(w http.ResponseWriter, r *http.Request) { serveAttach(w, r, rt) }
	forward := func(w http.ResponseWriter, r *http.Request) { servePortForward(w, r, rt) }
	for _, method := range []string{"GET", "POST"} {
		mux.HandleFunc(method+" /exec/{namespace}/{pod}/{container}", exec)
		mux.HandleFunc(method+" /exec/{namespace}/{pod}/{uid}/{container}", exec)
		mux.HandleFunc(method+" /attach/{namespace}/{pod}/{container}", attach)
		mux.HandleFunc(method+" /attach/{namespace}/{pod}/{uid}/{container}", attach)
		mux.HandleFunc(method+" /portForward/{namespace}/{pod}", forward)
		mux.HandleFunc(method+" /portForward/{namespace}/{pod}/{uid}", forward)
	}
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", func(w http.ResponseWriter, r *http.Request) {
		serveLogs(w, r, rt, log)
	})
	return mux
}

func refOf(r *http.Request) ContainerRef {
	return ContainerRef{
		Namespace: r.PathValue("namespace"), Pod: r.PathValue("pod"),
		UID: types.UID(r.PathValue("uid")), Container: r.PathValue("container"),
	}
}

// runtimeAdapter turns Runtime into the interfaces of cri-streaming, which
// pass the pod as "name" and the container separately.
type runtimeAdapter struct {
	rt  Runtime
	ref ContainerRef
}

func streams(in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) Streams {
	return Streams{Stdin: in, Stdout: out, Stderr: errOut, TTY: tty, Resize: resize}
}

func (a runtimeAdapter) ExecInContainer(ctx context.Context, _, _, _ string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	return a.rt.Exec(ctx, a.ref, cmd, streams(in, out, errOut, tty, resize))
}

func (a runtimeAdapter) AttachContainer(ctx context.Context, _, _, _ string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	return a.rt.Attach(ctx, a.ref, streams(in, out, errOut, tty, resize))
}

func (a runtimeAdapter) PortForward(ctx context.Context, _, _ string, port int32, stream io.ReadWriteCloser) error {
	return a.rt.PortForward(ctx, a.ref, port, stream)
}

func serveExec(w http.ResponseWriter, r *http.Request, rt Runtime) {
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	cmd := r.URL.Query()["command"]
	if len(cmd) == 0 {
		http.Error(w, "no command", http.StatusBadRequest)
		return
	}
	ref := refOf(r)
	remotecommand.ServeExec(w, r, runtimeAdapter{rt, ref}, ref.Pod, string(ref.UID), ref.Container, cmd, opts,
		idleTimeout, streamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

func serveAttach(w http.ResponseWriter, r *http.Request, rt Runtime) {
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ref := refOf(r)
	remotecommand.ServeAttach(w, r, runtimeAdapter{rt, ref}, ref.Pod, string(ref.UID), ref.Container, opts,
		idleTimeout, streamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

func servePortForward(w http.ResponseWriter, r *http.Request, rt Runtime) {
	opts, err := portforward.NewV4Options(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ref := refOf(r)
	portforward.ServePortForward(w, r, runtimeAdapter{rt, ref}, ref.Pod, string(ref.UID), opts,
		idleTimeout, streamCreationTimeout, portforward.SupportedProtocols)
}
