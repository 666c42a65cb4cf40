package check

import (
	"net"
	"strings"
)

// port returns the port of host:port, "" when addr is not one.
func port(addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return p
}

// hostOf returns the host of host:port, "" when addr is not one.
func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return h
}

// isLoopbackAddr reports whether host:port listens on loopback only (as
// the binaries decide it): an empty host or 0.0.0.0 listens everywhere.
func isLoopbackAddr(addr string) bool {
	h, _, err := net.SplitHostPort(addr)
	return err == nil && isLoopbackHost(h)
}

// isLoopbackHost reports whether a host is a loopback name or address.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return ip != nil && ip.IsLoopback()
}

// controlPlaneAddr returns the host:port a gateway's LUTHIEN_CONTROL_PLANE
// names: the value itself, or the endpoint of a DNS target
// (dns:///host:port, dns://dns-server/host:port).
func controlPlaneAddr(target string) string {
	rest, ok := strings.CutPrefix(target, "dns://")
	if !ok {
		return target
	}
	_, endpoint, _ := strings.Cut(rest, "/")
	return endpoint
}
