// Package wire is the probe protocol spoken between `netpolcheck-probe
// connect`/`batch` and `netpolcheck-probe serve`, identical over TCP, UDP
// and SCTP: the client sends one Request (a JSON object followed by a
// newline, as a stream line or a whole datagram/message), the server answers
// with one Answer the same way. The random nonce ties an answer to its
// request, and the identity in the answer tells which endpoint answered, so a
// reply from the wrong endpoint is detected instead of counted as a pass.
package wire

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Version is the protocol version this package speaks.
const Version = 1

// MaxMessage bounds a request or answer; servers read no more than this.
const MaxMessage = 4096

// Request is what a probe client sends.
type Request struct {
	Version int    `json:"v"`
	Nonce   string `json:"nonce"`
}

// Answer is what a server replies: the nonce of the request and who answered.
type Answer struct {
	Version int    `json:"v"`
	Nonce   string `json:"nonce"`
	// Identity is the endpoint name: "namespace/pod" or an external host's name.
	Identity  string `json:"identity"`
	Container string `json:"container,omitempty"`
	// Port and Protocol are those the answering listener serves.
	Port     int32  `json:"port"`
	Protocol string `json:"protocol"`
}

// Peer renders the responder as "identity/container" (just the identity when
// there is no container name).
func (a Answer) Peer() string {
	if a.Container == "" {
		return a.Identity
	}
	return a.Identity + "/" + a.Container
}

// NewRequest returns a request with a fresh random nonce.
func NewRequest() Request {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux.
	return Request{Version: Version, Nonce: hex.EncodeToString(b[:])}
}

// Marshal encodes a request or answer as one JSON line.
func Marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("wire: encoding %T: %v", v, err)) // plain structs always encode
	}
	return append(b, '\n')
}

// ParseRequest decodes a request and checks its version. A request of
// another version is returned along with the error, so a server can still
// echo its nonce.
func ParseRequest(b []byte) (Request, error) {
	var r Request
	if err := json.Unmarshal(bytes.TrimSpace(b), &r); err != nil {
		return Request{}, fmt.Errorf("decoding probe request: %w", err)
	}
	if r.Version != Version {
		return r, fmt.Errorf("probe request has protocol version %d, this server speaks %d", r.Version, Version)
	}
	return r, nil
}

// ErrOtherNonce marks an answer to another request than the one given: over
// UDP, a late answer to an earlier probe that used the same source port.
var ErrOtherNonce = errors.New("the answer carries another request's nonce")

// ParseAnswer decodes an answer and checks that it answers req; an answer
// to another request is returned along with an error wrapping
// ErrOtherNonce.
func ParseAnswer(b []byte, req Request) (Answer, error) {
	var a Answer
	if err := json.Unmarshal(bytes.TrimSpace(b), &a); err != nil {
		return Answer{}, fmt.Errorf("decoding probe answer %q: %w", truncate(b), err)
	}
	if a.Version != Version {
		return Answer{}, fmt.Errorf("probe answer has protocol version %d, want %d", a.Version, Version)
	}
	if a.Nonce != req.Nonce {
		return a, fmt.Errorf("probe answer from %s carries nonce %q, want %q: %w", a.Peer(), a.Nonce, req.Nonce, ErrOtherNonce)
	}
	return a, nil
}

// Matches reports whether the answer comes from the expected endpoint. An
// empty expectation accepts any identity.
func (a Answer) Matches(expect string) bool {
	return expect == "" || a.Identity == expect
}

func truncate(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
