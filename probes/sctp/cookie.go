package sctp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"net/netip"
	"time"
)

// cookieLifetime bounds how long after the INIT ACK a COOKIE ECHO is
// accepted (RFC 9260 suggests 60 s for Valid.Cookie.Life).
const cookieLifetime = 60 * time.Second

// cookieVersion lets a future layout be told apart from this one.
const cookieVersion = 1

// cookieLen is the length of an encoded cookie: version, creation time,
// two tags, two TSNs, two ports, two 16-byte addresses and the MAC.
const cookieLen = 1 + 8 + 4*4 + 2*2 + 2*16 + sha256.Size

// stateCookie is everything the server needs to build the association when
// the COOKIE ECHO comes back, so it keeps no state before that (RFC 9260
// section 5.1.3). The MAC makes it unforgeable.
type stateCookie struct {
	created  time.Time
	localTag uint32 // the server's tag: the COOKIE ECHO must carry it
	peerTag  uint32
	localTSN uint32
	peerTSN  uint32
	local    netip.AddrPort
	remote   netip.AddrPort
}

func (c stateCookie) encode(secret []byte) []byte {
	b := make([]byte, 0, cookieLen)
	b = append(b, cookieVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(c.created.UnixNano()))
	b = binary.BigEndian.AppendUint32(b, c.localTag)
	b = binary.BigEndian.AppendUint32(b, c.peerTag)
	b = binary.BigEndian.AppendUint32(b, c.localTSN)
	b = binary.BigEndian.AppendUint32(b, c.peerTSN)
	b = binary.BigEndian.AppendUint16(b, c.local.Port())
	b = binary.BigEndian.AppendUint16(b, c.remote.Port())
	local, remote := c.local.Addr().As16(), c.remote.Addr().As16()
	b = append(b, local[:]...)
	b = append(b, remote[:]...)
	mac := hmac.New(sha256.New, secret)
	mac.Write(b)
	return mac.Sum(b)
}

var (
	errCookieForged = errors.New("state cookie MAC does not verify")
	errCookieStale  = errors.New("state cookie has expired")
)

// decodeCookie verifies the MAC and age of a cookie and decodes it. The
// addresses come back as IPv4-mapped or IPv6 16-byte forms; callers compare
// them with Unmap applied.
func decodeCookie(b, secret []byte, now time.Time) (stateCookie, error) {
	if len(b) != cookieLen || b[0] != cookieVersion {
		return stateCookie{}, errCookieForged
	}
	body, sum := b[:cookieLen-sha256.Size], b[cookieLen-sha256.Size:]
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	if !hmac.Equal(sum, mac.Sum(nil)) {
		return stateCookie{}, errCookieForged
	}
	c := stateCookie{
		created:  time.Unix(0, int64(binary.BigEndian.Uint64(body[1:]))),
		localTag: binary.BigEndian.Uint32(body[9:]),
		peerTag:  binary.BigEndian.Uint32(body[13:]),
		localTSN: binary.BigEndian.Uint32(body[17:]),
		peerTSN:  binary.BigEndian.Uint32(body[21:]),
	}
	localPort, remotePort := binary.BigEndian.Uint16(body[25:]), binary.BigEndian.Uint16(body[27:])
	local := netip.AddrFrom16([16]byte(body[29:45])).Unmap()
	remote := netip.AddrFrom16([16]byte(body[45:61])).Unmap()
	c.local = netip.AddrPortFrom(local, localPort)
	c.remote = netip.AddrPortFrom(remote, remotePort)
	if age := now.Sub(c.created); age < 0 || age > cookieLifetime {
		return stateCookie{}, errCookieStale
	}
	return c, nil
}
