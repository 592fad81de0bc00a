package packet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// The CRC32c test vectors of RFC 3720 appendix B.4, which SCTP's checksum
// shares (RFC 9260 appendix A).
func TestChecksumKnownVectors(t *testing.T) {
	inc := make([]byte, 32)
	dec := make([]byte, 32)
	for i := range inc {
		inc[i] = byte(i)
		dec[i] = byte(31 - i)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want uint32
	}{
		{"32 zero bytes", make([]byte, 32), 0x8a9136aa},
		{"32 0xff bytes", bytes.Repeat([]byte{0xff}, 32), 0x62a8ab43},
		{"incrementing", inc, 0x46dd794e},
		{"decrementing", dec, 0x113fdb5c},
	} {
		if got := Checksum(tc.in); got != tc.want {
			t.Errorf("%s: Checksum = %#08x, want %#08x", tc.name, got, tc.want)
		}
	}
}

// An INIT packet (ports 0/0, one IPv4 address parameter) built by another
// SCTP implementation, Scapy, with the checksum bytes it put on the wire.
var foreignInit = []byte{
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x2c, 0x0b, 0x5f,
	0x01, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x08,
	0x7f, 0x00, 0x00, 0x01,
}

func TestParseForeignPacket(t *testing.T) {
	p, err := Parse(foreignInit)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(p.Chunks) != 1 || p.Chunks[0].Type != TypeInit {
		t.Fatalf("chunks = %+v, want one INIT", p.Chunks)
	}
	in, err := ParseInit(p.Chunks[0])
	if err != nil {
		t.Fatalf("ParseInit: %v", err)
	}
	addr, ok := in.Param(5)
	if !ok || !bytes.Equal(addr, []byte{127, 0, 0, 1}) {
		t.Errorf("IPv4 address parameter = %v, %v; want 127.0.0.1", addr, ok)
	}
	// Re-encoding gives the same bytes, checksum included.
	if got := p.Marshal(); !bytes.Equal(got, foreignInit) {
		t.Errorf("Marshal = % x\nwant      % x", got, foreignInit)
	}
}

func TestParseRejectsCorruption(t *testing.T) {
	bad := bytes.Clone(foreignInit)
	bad[len(bad)-1] ^= 1
	if _, err := Parse(bad); !errors.Is(err, ErrChecksum) {
		t.Errorf("Parse(flipped bit) error = %v, want ErrChecksum", err)
	}
	if _, err := Parse(foreignInit[:10]); err == nil {
		t.Error("Parse(short packet) succeeded")
	}
	// A chunk whose length runs past the packet, with a valid checksum.
	long := bytes.Clone(foreignInit)
	binary.BigEndian.PutUint16(long[14:], 200)
	binary.LittleEndian.PutUint32(long[8:], 0)
	binary.LittleEndian.PutUint32(long[8:], Checksum(long))
	if _, err := Parse(long); err == nil || errors.Is(err, ErrChecksum) {
		t.Errorf("Parse(overlong chunk) error = %v, want a length error", err)
	}
}

func TestRoundTripAllChunks(t *testing.T) {
	in := Init{InitiateTag: 0xdeadbeef, AdvertisedWindow: 65536, OutboundStreams: 1, InboundStreams: 1, InitialTSN: 7,
		Params: []Param{{Type: ParamStateCookie, Value: []byte("cookie!")}}}
	data := Data{Flags: DataBegin | DataEnd, TSN: 7, PPID: 0, UserData: []byte("hello")}
	sack := Sack{CumulativeTSNAck: 99, AdvertisedWindow: 1500}
	p := &Packet{SrcPort: 40000, DstPort: 80, VerificationTag: 0x01020304, Chunks: []Chunk{
		in.Chunk(TypeInitAck), sack.Chunk(), data.Chunk(), Shutdown(42), Abort(true), ShutdownComplete(false),
		CookieEcho([]byte{1, 2, 3}), CookieAck(), ShutdownAck(),
	}}
	b := p.Marshal()
	if len(b)%4 != 0 {
		t.Errorf("packet length %d is not padded to 4 bytes", len(b))
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got.SrcPort != 40000 || got.DstPort != 80 || got.VerificationTag != 0x01020304 || len(got.Chunks) != 9 {
		t.Fatalf("header/chunks = %+v", got)
	}
	gotInit, err := ParseInit(got.Chunks[0])
	if err != nil {
		t.Fatal(err)
	}
	cookie, _ := gotInit.Param(ParamStateCookie)
	if gotInit.InitiateTag != in.InitiateTag || gotInit.InitialTSN != 7 || string(cookie) != "cookie!" {
		t.Errorf("INIT-ACK = %+v", gotInit)
	}
	if s, err := ParseSack(got.Chunks[1]); err != nil || s != sack {
		t.Errorf("SACK = %+v, %v", s, err)
	}
	d, err := ParseData(got.Chunks[2])
	if err != nil || d.TSN != 7 || string(d.UserData) != "hello" || d.Flags != DataBegin|DataEnd {
		t.Errorf("DATA = %+v, %v", d, err)
	}
	if cum, err := ParseShutdown(got.Chunks[3]); err != nil || cum != 42 {
		t.Errorf("SHUTDOWN = %d, %v", cum, err)
	}
	if got.Chunks[4].Type != TypeAbort || got.Chunks[4].Flags != FlagT {
		t.Errorf("ABORT = %+v", got.Chunks[4])
	}
	if got.Chunks[5].Type != TypeShutdownComplete || got.Chunks[5].Flags != 0 {
		t.Errorf("SHUTDOWN-COMPLETE = %+v", got.Chunks[5])
	}
	if !bytes.Equal(got.Chunks[6].Value, []byte{1, 2, 3}) {
		t.Errorf("COOKIE-ECHO value = %v", got.Chunks[6].Value)
	}
	if src, dst, tag, ok := Ports(b); !ok || src != 40000 || dst != 80 || tag != 0x01020304 {
		t.Errorf("Ports = %d %d %#x %v", src, dst, tag, ok)
	}
}

func TestParseDataWithoutUserData(t *testing.T) {
	if _, err := ParseData(Chunk{Type: TypeData, Value: make([]byte, 12)}); err == nil {
		t.Error("ParseData accepted a DATA chunk without user data")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(foreignInit)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		for _, c := range p.Chunks {
			switch c.Type {
			case TypeInit, TypeInitAck:
				_, _ = ParseInit(c)
			case TypeData:
				_, _ = ParseData(c)
			case TypeSack:
				_, _ = ParseSack(c)
			}
		}
	})
}
