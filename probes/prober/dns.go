package prober

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Environment variables that configure a probe agent's resolver the way a
// pod's /etc/resolv.conf does, for a probe agent that runs in a pod's
// network namespace but with this machine's files (`netpolcheck-probe` reads
// them as the defaults of its --dns-server and --dns-search flags; pods of
// the local cluster have their own resolv.conf and need neither).
const (
	EnvDNSServer = "NETPOLCHECK_DNS_SERVER"
	EnvDNSSearch = "NETPOLCHECK_DNS_SEARCH"
)

// SearchList is the search list the kubelet gives a pod of namespace in a
// cluster with the DNS domain: NAMESPACE.svc.DOMAIN, svc.DOMAIN, DOMAIN.
func SearchList(namespace, domain string) []string {
	return []string{namespace + ".svc." + domain, "svc." + domain, domain}
}

// defaultNDots is the kubelet's ndots: names with fewer dots try the search
// list first.
const defaultNDots = 5

// Resolver resolves names as a pod's resolver does, without reading
// /etc/resolv.conf: every query goes to Server, and a name with fewer than
// NDots dots (and no final dot) is tried with each Search domain appended
// before it is tried as it is. A domain that does not have the name moves on
// to the next; any other failure (a timeout: the server is not reachable)
// ends the lookup.
type Resolver struct {
	// Server is the DNS server: an address, with or without a port (53).
	Server string
	// Search is the search list, such as ns.svc.cluster.local,
	// svc.cluster.local, cluster.local.
	Search []string
	// NDots defaults to 5, as in a pod.
	NDots int
}

// NewResolver returns a resolver for server and a comma-separated search
// list; it returns nil when server is empty (the system resolver then).
func NewResolver(server, search string) *Resolver {
	if server == "" {
		return nil
	}
	r := &Resolver{Server: server}
	for _, d := range strings.Split(search, ",") {
		if d = strings.Trim(strings.TrimSpace(d), "."); d != "" {
			r.Search = append(r.Search, d)
		}
	}
	return r
}

// LookupAddr returns the first address of host.
func (r *Resolver) LookupAddr(ctx context.Context, host string) (netip.Addr, error) {
	server := r.Server
	if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(server, "53")
	}
	res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, server)
	}}
	var err error
	for _, name := range r.candidates(host) {
		var addrs []netip.Addr
		addrs, err = res.LookupNetIP(ctx, "ip", name)
		if err == nil && len(addrs) > 0 {
			return addrs[0].Unmap(), nil
		}
		var dnsErr *net.DNSError
		if err != nil && (!errors.As(err, &dnsErr) || !dnsErr.IsNotFound) {
			break
		}
	}
	if err == nil {
		err = errors.New("no addresses")
	}
	return netip.Addr{}, fmt.Errorf("resolving %q through %s: %w", host, server, err)
}

// candidates returns the fully qualified names to try for host, in order.
func (r *Resolver) candidates(host string) []string {
	if strings.HasSuffix(host, ".") {
		return []string{host}
	}
	ndots := r.NDots
	if ndots <= 0 {
		ndots = defaultNDots
	}
	var searched []string
	for _, d := range r.Search {
		searched = append(searched, host+"."+d+".")
	}
	if strings.Count(host, ".") >= ndots {
		return append([]string{host + "."}, searched...)
	}
	return append(searched, host+".")
}
