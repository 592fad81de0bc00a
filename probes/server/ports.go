package server

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Port is one port/protocol a server answers on, and the container name it
// reports in answers.
type Port struct {
	Port      int32
	Protocol  corev1.Protocol
	Container string
}

func (p Port) String() string { return fmt.Sprintf("%d/%s", p.Port, p.Protocol) }

// DefaultContainer is the container name upstream's netpol e2e gives the
// container serving a port: serve-80-tcp, serve-81-udp, ...
func DefaultContainer(port int32, protocol corev1.Protocol) string {
	return fmt.Sprintf("serve-%d-%s", port, strings.ToLower(string(protocol)))
}

// ParsePortSpec parses a --port value: "80/TCP", several ports and protocols
// at once ("80,81/TCP,UDP,SCTP" serves every combination), and optionally
// "=NAME" for the container name reported (only with one port and protocol).
// The protocol defaults to TCP.
func ParsePortSpec(spec string) ([]Port, error) {
	rest, container, named := strings.Cut(spec, "=")
	portList, protoList, hasProto := strings.Cut(rest, "/")
	if !hasProto {
		protoList = string(corev1.ProtocolTCP)
	}
	var ports []int32
	for _, s := range strings.Split(portList, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("port spec %q: %q is not a port number", spec, s)
		}
		ports = append(ports, int32(n))
	}
	var protocols []corev1.Protocol
	for _, s := range strings.Split(protoList, ",") {
		p := corev1.Protocol(strings.ToUpper(strings.TrimSpace(s)))
		switch p {
		case corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
		default:
			return nil, fmt.Errorf("port spec %q: protocol %q is not TCP, UDP or SCTP", spec, s)
		}
		protocols = append(protocols, p)
	}
	if named && (len(ports) != 1 || len(protocols) != 1 || container == "") {
		return nil, fmt.Errorf("port spec %q: a container name needs exactly one port and protocol", spec)
	}
	var out []Port
	for _, proto := range protocols {
		for _, n := range ports {
			out = append(out, Port{Port: n, Protocol: proto, Container: container})
		}
	}
	return out, nil
}
