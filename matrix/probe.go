package matrix

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// ProtocolICMP names the informational ICMP echo probe. ICMP is not governed by
// the NetworkPolicy API, so its results never decide pass or fail.
const ProtocolICMP corev1.Protocol = "ICMP"

// ProtocolDNS names a lookup probe: the source resolves the probe's host
// through its DNS server and connects nowhere. It is connected when the name
// resolves (the peer is the address), timeout when no server answers.
const ProtocolDNS corev1.Protocol = "DNS"

// Outcome is what one probe observed.
type Outcome string

// The outcomes a probe can have.
const (
	// Connected: the destination answered with the expected identity.
	Connected Outcome = "connected"
	// Refused: the destination (or a router) actively refused the connection.
	Refused Outcome = "refused"
	// Timeout: nothing answered before the probe timeout.
	Timeout Outcome = "timeout"
	// WrongPeer: something answered, but not the endpoint the probe targeted.
	WrongPeer Outcome = "wrong-peer"
	// Error: the probe could not be run (bad address, no route in the source, ...).
	Error Outcome = "error"
)

// Reached reports whether the outcome counts as "connection allowed".
// Only a reply from the right peer does: a wrong peer is a failure, never a pass.
func (o Outcome) Reached() bool { return o == Connected }

// Probe is one connection attempt made from a source endpoint. It is the unit
// of the batch protocol spoken between the runner and `netpolcheck-probe batch`.
type Probe struct {
	// ID identifies the probe within its batch; results carry it back.
	ID int `json:"id"`
	// Host is the destination: an IP literal or a DNS name.
	Host string `json:"host"`
	// Port is the destination port; ignored for ICMP.
	Port int32 `json:"port,omitempty"`
	// Protocol is TCP, UDP, SCTP, ICMP or DNS.
	Protocol corev1.Protocol `json:"protocol"`
	// Expect is the identity the destination must answer with
	// (an endpoint name: "namespace/pod" or an external host's name).
	// Empty accepts any identity.
	Expect string `json:"expect,omitempty"`
	// TimeoutMillis bounds the whole probe.
	TimeoutMillis int64 `json:"timeoutMs"`
}

// Timeout returns the probe's timeout as a duration.
func (p Probe) Timeout() time.Duration { return time.Duration(p.TimeoutMillis) * time.Millisecond }

// String renders the probe for logs and error messages.
func (p Probe) String() string {
	return fmt.Sprintf("%s %s:%d", p.Protocol, p.Host, p.Port)
}

// Result is the answer to one Probe.
type Result struct {
	ID      int     `json:"id"`
	Outcome Outcome `json:"outcome"`
	// Peer is the identity the responder reported ("namespace/pod/container"
	// or an external host's name and server), when it answered at all.
	Peer string `json:"peer,omitempty"`
	// LatencyMicros is the time from the start of the probe to its outcome.
	LatencyMicros int64 `json:"latencyUs"`
	// Detail explains refused, timeout, wrong-peer and error outcomes.
	Detail string `json:"detail,omitempty"`
}

// Latency returns the probe's latency as a duration.
func (r Result) Latency() time.Duration { return time.Duration(r.LatencyMicros) * time.Microsecond }

// Transport runs a batch of probes from one source endpoint and returns one
// result per probe, in any order. Implementations: kube exec into the source
// pod's probe container, and a local network namespace (package probes).
// An error means the batch as a whole could not run; per-probe failures are
// results with outcome Error.
type Transport interface {
	RunBatch(ctx context.Context, source Endpoint, probes []Probe) ([]Result, error)
}
