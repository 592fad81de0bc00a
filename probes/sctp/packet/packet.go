// Package packet encodes and decodes SCTP packets (RFC 9260 section 3): the
// common header with its CRC32c checksum, and the chunks a minimal endpoint
// needs (INIT, INIT ACK, DATA, SACK, ABORT, SHUTDOWN, SHUTDOWN ACK, COOKIE
// ECHO, COOKIE ACK, SHUTDOWN COMPLETE). Chunks of other types are carried as
// opaque values. The package does no I/O.
package packet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// HeaderLen is the length of the SCTP common header.
const HeaderLen = 12

// chunkHeaderLen is the length of a chunk's type, flags and length fields.
const chunkHeaderLen = 4

// ChunkType is the type of a chunk (RFC 9260 section 3.2).
type ChunkType uint8

// Chunk types this package knows by name.
const (
	TypeData             ChunkType = 0
	TypeInit             ChunkType = 1
	TypeInitAck          ChunkType = 2
	TypeSack             ChunkType = 3
	TypeHeartbeat        ChunkType = 4
	TypeHeartbeatAck     ChunkType = 5
	TypeAbort            ChunkType = 6
	TypeShutdown         ChunkType = 7
	TypeShutdownAck      ChunkType = 8
	TypeError            ChunkType = 9
	TypeCookieEcho       ChunkType = 10
	TypeCookieAck        ChunkType = 11
	TypeShutdownComplete ChunkType = 14
)

var chunkTypeNames = map[ChunkType]string{
	TypeData: "DATA", TypeInit: "INIT", TypeInitAck: "INIT-ACK", TypeSack: "SACK",
	TypeHeartbeat: "HEARTBEAT", TypeHeartbeatAck: "HEARTBEAT-ACK", TypeAbort: "ABORT",
	TypeShutdown: "SHUTDOWN", TypeShutdownAck: "SHUTDOWN-ACK", TypeError: "ERROR",
	TypeCookieEcho: "COOKIE-ECHO", TypeCookieAck: "COOKIE-ACK", TypeShutdownComplete: "SHUTDOWN-COMPLETE",
}

func (t ChunkType) String() string {
	if name, ok := chunkTypeNames[t]; ok {
		return name
	}
	return fmt.Sprintf("chunk-%d", uint8(t))
}

// FlagT is the T bit of ABORT and SHUTDOWN COMPLETE: set when the packet's
// verification tag is the receiver's own tag reflected back, because the
// sender has no association (RFC 9260 sections 3.3.7 and 3.3.13).
const FlagT uint8 = 0x01

// Chunk is one chunk: its type, flags and value (without the 4-byte chunk
// header and without padding).
type Chunk struct {
	Type  ChunkType
	Flags uint8
	Value []byte
}

// Packet is an SCTP packet: the common header and its chunks.
type Packet struct {
	SrcPort         uint16
	DstPort         uint16
	VerificationTag uint32
	Chunks          []Chunk
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum returns the CRC32c of an SCTP packet whose checksum field is
// zero (RFC 9260 appendix A). Marshal stores it least significant byte
// first, as the reflected CRC32c is defined to be transmitted.
func Checksum(packet []byte) uint32 {
	return crc32.Checksum(packet, castagnoli)
}

// Marshal encodes the packet, pads every chunk to a multiple of 4 bytes and
// fills in the checksum.
func (p *Packet) Marshal() []byte {
	size := HeaderLen
	for _, c := range p.Chunks {
		size += padded(chunkHeaderLen + len(c.Value))
	}
	b := make([]byte, size)
	binary.BigEndian.PutUint16(b[0:], p.SrcPort)
	binary.BigEndian.PutUint16(b[2:], p.DstPort)
	binary.BigEndian.PutUint32(b[4:], p.VerificationTag)
	off := HeaderLen
	for _, c := range p.Chunks {
		b[off] = byte(c.Type)
		b[off+1] = c.Flags
		binary.BigEndian.PutUint16(b[off+2:], uint16(chunkHeaderLen+len(c.Value)))
		copy(b[off+chunkHeaderLen:], c.Value)
		off += padded(chunkHeaderLen + len(c.Value))
	}
	binary.LittleEndian.PutUint32(b[8:], Checksum(b))
	return b
}

// ErrChecksum is returned by Parse for a packet whose CRC32c does not match.
var ErrChecksum = errors.New("sctp: bad checksum")

// Parse decodes a packet and verifies its checksum and chunk lengths. The
// chunk values alias b.
func Parse(b []byte) (*Packet, error) {
	if len(b) < HeaderLen {
		return nil, fmt.Errorf("sctp: packet of %d bytes is shorter than the common header", len(b))
	}
	want := binary.LittleEndian.Uint32(b[8:])
	var zero [4]byte
	crc := crc32.Update(0, castagnoli, b[:8])
	crc = crc32.Update(crc, castagnoli, zero[:])
	crc = crc32.Update(crc, castagnoli, b[HeaderLen:])
	if crc != want {
		return nil, ErrChecksum
	}
	p := &Packet{
		SrcPort:         binary.BigEndian.Uint16(b[0:]),
		DstPort:         binary.BigEndian.Uint16(b[2:]),
		VerificationTag: binary.BigEndian.Uint32(b[4:]),
	}
	rest := b[HeaderLen:]
	for len(rest) > 0 {
		if len(rest) < chunkHeaderLen {
			return nil, fmt.Errorf("sctp: %d trailing bytes after the last chunk", len(rest))
		}
		length := int(binary.BigEndian.Uint16(rest[2:]))
		if length < chunkHeaderLen || length > len(rest) {
			return nil, fmt.Errorf("sctp: chunk %s has invalid length %d (%d bytes left)", ChunkType(rest[0]), length, len(rest))
		}
		p.Chunks = append(p.Chunks, Chunk{Type: ChunkType(rest[0]), Flags: rest[1], Value: rest[chunkHeaderLen:length]})
		rest = rest[min(padded(length), len(rest)):]
	}
	if len(p.Chunks) == 0 {
		return nil, errors.New("sctp: packet has no chunks")
	}
	return p, nil
}

// Ports returns the ports and verification tag of an SCTP packet (or of the
// first 8 bytes of one quoted in an ICMP error) without verifying anything.
func Ports(b []byte) (src, dst uint16, tag uint32, ok bool) {
	if len(b) < 8 {
		return 0, 0, 0, false
	}
	return binary.BigEndian.Uint16(b[0:]), binary.BigEndian.Uint16(b[2:]), binary.BigEndian.Uint32(b[4:]), true
}

func padded(n int) int { return (n + 3) &^ 3 }
