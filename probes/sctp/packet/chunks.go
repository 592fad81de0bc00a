package packet

import (
	"encoding/binary"
	"fmt"
)

// ParamStateCookie is the State Cookie parameter of an INIT ACK.
const ParamStateCookie uint16 = 7

const paramHeaderLen = 4

// Param is a variable-length parameter of an INIT or INIT ACK chunk.
type Param struct {
	Type  uint16
	Value []byte
}

// Init is the value of an INIT or INIT ACK chunk (RFC 9260 sections 3.3.2
// and 3.3.3); they share one layout.
type Init struct {
	InitiateTag      uint32
	AdvertisedWindow uint32
	OutboundStreams  uint16
	InboundStreams   uint16
	InitialTSN       uint32
	Params           []Param
}

const initFixedLen = 16

// Chunk encodes the value as a chunk of type t (TypeInit or TypeInitAck).
func (in Init) Chunk(t ChunkType) Chunk {
	size := initFixedLen
	for _, p := range in.Params {
		size += padded(paramHeaderLen + len(p.Value))
	}
	b := make([]byte, size)
	binary.BigEndian.PutUint32(b[0:], in.InitiateTag)
	binary.BigEndian.PutUint32(b[4:], in.AdvertisedWindow)
	binary.BigEndian.PutUint16(b[8:], in.OutboundStreams)
	binary.BigEndian.PutUint16(b[10:], in.InboundStreams)
	binary.BigEndian.PutUint32(b[12:], in.InitialTSN)
	off := initFixedLen
	for _, p := range in.Params {
		binary.BigEndian.PutUint16(b[off:], p.Type)
		binary.BigEndian.PutUint16(b[off+2:], uint16(paramHeaderLen+len(p.Value)))
		copy(b[off+paramHeaderLen:], p.Value)
		off += padded(paramHeaderLen + len(p.Value))
	}
	return Chunk{Type: t, Value: b}
}

// ParseInit decodes an INIT or INIT ACK chunk value.
func ParseInit(c Chunk) (Init, error) {
	b := c.Value
	if len(b) < initFixedLen {
		return Init{}, fmt.Errorf("sctp: %s chunk of %d bytes is too short", c.Type, len(b))
	}
	in := Init{
		InitiateTag:      binary.BigEndian.Uint32(b[0:]),
		AdvertisedWindow: binary.BigEndian.Uint32(b[4:]),
		OutboundStreams:  binary.BigEndian.Uint16(b[8:]),
		InboundStreams:   binary.BigEndian.Uint16(b[10:]),
		InitialTSN:       binary.BigEndian.Uint32(b[12:]),
	}
	rest := b[initFixedLen:]
	for len(rest) > 0 {
		if len(rest) < paramHeaderLen {
			return Init{}, fmt.Errorf("sctp: %s has %d trailing bytes after its parameters", c.Type, len(rest))
		}
		length := int(binary.BigEndian.Uint16(rest[2:]))
		if length < paramHeaderLen || length > len(rest) {
			return Init{}, fmt.Errorf("sctp: %s parameter %d has invalid length %d", c.Type, binary.BigEndian.Uint16(rest), length)
		}
		in.Params = append(in.Params, Param{Type: binary.BigEndian.Uint16(rest), Value: rest[paramHeaderLen:length]})
		rest = rest[min(padded(length), len(rest)):]
	}
	return in, nil
}

// Param returns the value of the first parameter of type t.
func (in Init) Param(t uint16) ([]byte, bool) {
	for _, p := range in.Params {
		if p.Type == t {
			return p.Value, true
		}
	}
	return nil, false
}

// Flags of a DATA chunk.
const (
	DataEnd       uint8 = 0x01 // last fragment of a user message
	DataBegin     uint8 = 0x02 // first fragment of a user message
	DataUnordered uint8 = 0x04
)

// Data is the value of a DATA chunk (RFC 9260 section 3.3.1).
type Data struct {
	Flags     uint8
	TSN       uint32
	StreamID  uint16
	StreamSeq uint16
	PPID      uint32
	UserData  []byte
}

const dataFixedLen = 12

// Chunk encodes the DATA chunk.
func (d Data) Chunk() Chunk {
	b := make([]byte, dataFixedLen+len(d.UserData))
	binary.BigEndian.PutUint32(b[0:], d.TSN)
	binary.BigEndian.PutUint16(b[4:], d.StreamID)
	binary.BigEndian.PutUint16(b[6:], d.StreamSeq)
	binary.BigEndian.PutUint32(b[8:], d.PPID)
	copy(b[dataFixedLen:], d.UserData)
	return Chunk{Type: TypeData, Flags: d.Flags, Value: b}
}

// ParseData decodes a DATA chunk; a chunk without user data is an error.
func ParseData(c Chunk) (Data, error) {
	if len(c.Value) <= dataFixedLen {
		return Data{}, fmt.Errorf("sctp: DATA chunk of %d bytes carries no user data", len(c.Value))
	}
	return Data{
		Flags:     c.Flags,
		TSN:       binary.BigEndian.Uint32(c.Value[0:]),
		StreamID:  binary.BigEndian.Uint16(c.Value[4:]),
		StreamSeq: binary.BigEndian.Uint16(c.Value[6:]),
		PPID:      binary.BigEndian.Uint32(c.Value[8:]),
		UserData:  c.Value[dataFixedLen:],
	}, nil
}

// Sack is the value of a SACK chunk without gap blocks or duplicate TSNs,
// which a peer that never has more than one DATA chunk in flight needs
// neither to send nor to read (RFC 9260 section 3.3.4).
type Sack struct {
	CumulativeTSNAck uint32
	AdvertisedWindow uint32
}

const sackFixedLen = 12

// Chunk encodes the SACK chunk.
func (s Sack) Chunk() Chunk {
	b := make([]byte, sackFixedLen)
	binary.BigEndian.PutUint32(b[0:], s.CumulativeTSNAck)
	binary.BigEndian.PutUint32(b[4:], s.AdvertisedWindow)
	return Chunk{Type: TypeSack, Value: b}
}

// ParseSack decodes the fixed part of a SACK chunk.
func ParseSack(c Chunk) (Sack, error) {
	if len(c.Value) < sackFixedLen {
		return Sack{}, fmt.Errorf("sctp: SACK chunk of %d bytes is too short", len(c.Value))
	}
	return Sack{
		CumulativeTSNAck: binary.BigEndian.Uint32(c.Value[0:]),
		AdvertisedWindow: binary.BigEndian.Uint32(c.Value[4:]),
	}, nil
}

// Shutdown returns a SHUTDOWN chunk acknowledging TSNs up to cumulativeTSNAck.
func Shutdown(cumulativeTSNAck uint32) Chunk {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, cumulativeTSNAck)
	return Chunk{Type: TypeShutdown, Value: b}
}

// ParseShutdown returns the cumulative TSN ack of a SHUTDOWN chunk.
func ParseShutdown(c Chunk) (uint32, error) {
	if len(c.Value) < 4 {
		return 0, fmt.Errorf("sctp: SHUTDOWN chunk of %d bytes is too short", len(c.Value))
	}
	return binary.BigEndian.Uint32(c.Value), nil
}

// Abort returns an ABORT chunk without error causes. reflected sets the T
// bit: the packet carries the peer's tag, because the sender has no TCB.
func Abort(reflected bool) Chunk { return Chunk{Type: TypeAbort, Flags: tBit(reflected)} }

// ShutdownComplete returns a SHUTDOWN COMPLETE chunk; reflected sets the T bit.
func ShutdownComplete(reflected bool) Chunk {
	return Chunk{Type: TypeShutdownComplete, Flags: tBit(reflected)}
}

// CookieEcho returns a COOKIE ECHO chunk carrying the cookie.
func CookieEcho(cookie []byte) Chunk { return Chunk{Type: TypeCookieEcho, Value: cookie} }

// CookieAck returns a COOKIE ACK chunk.
func CookieAck() Chunk { return Chunk{Type: TypeCookieAck} }

// ShutdownAck returns a SHUTDOWN ACK chunk.
func ShutdownAck() Chunk { return Chunk{Type: TypeShutdownAck} }

func tBit(reflected bool) uint8 {
	if reflected {
		return FlagT
	}
	return 0
}
