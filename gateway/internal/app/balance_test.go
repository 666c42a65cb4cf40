package app

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"luthien.dev/bench/fakeupstream"
	"luthien.dev/controlplane/server"
	"luthien.dev/gateway/internal/config"
)

// TestBalancesOverEveryAddress runs two control planes on one port of two
// loopback addresses, names both with one DNS name, and checks that a
// gateway linked to the name spreads its calls over both. Each control
// plane is the real server (registration, interceptors, token check and
// the binary's network options) with a counter of the calls it served.
//
// The machine's DNS cannot be changed by a test, so the name is answered
// by a DNS server in the test, named in the target
// (dns://server/name:port): the gateway's real path, gRPC's DNS resolver
// over Go's, with the name server chosen by the target. The dns:///
// form then asks the system's resolver for localhost: both control
// planes share the calls where localhost names both addresses, the one
// it names takes them all where it names one (/etc/hosts of many
// machines).
func TestBalancesOverEveryAddress(t *testing.T) {
	lis := loopbackPair(t)
	_, port, _ := net.SplitHostPort(lis[0].Addr().String())
	var cps [2]*countedControlPlane
	var ips []net.IP
	for i := range lis {
		cps[i] = serveCounted(t, lis[i], linkToken)
		ips = append(ips, cps[i].ip)
	}
	dnsServer := serveDNS(t, ips)
	localhost, err := net.DefaultResolver.LookupHost(t.Context(), "localhost")
	if err != nil {
		t.Fatalf("resolving localhost: %v", err)
	}

	up := fakeupstream.New()
	t.Cleanup(up.Close)
	for _, tt := range []struct {
		name, target string
		// serves reports whether the target resolves to a control
		// plane's address.
		serves func(cp *countedControlPlane) bool
	}{
		{"DNS server in the target", "dns://" + dnsServer + "/controlplane.luthien.test:" + port,
			func(*countedControlPlane) bool { return true }},
		{"system resolver", "dns:///localhost:" + port,
			func(cp *countedControlPlane) bool { return slices.Contains(localhost, cp.ip.String()) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var want []*countedControlPlane
			for _, cp := range cps {
				if tt.serves(cp) {
					want = append(want, cp)
				}
			}
			if len(want) == 0 {
				t.Skipf("localhost resolves to %v, neither control plane's address", localhost)
			}
			cfg, err := config.Load(nil, func(k string) string {
				return map[string]string{"LUTHIEN_CONTROL_PLANE": tt.target, "LUTHIEN_CONTROL_PLANE_TOKEN": linkToken,
					"OPENAI_BASE_URL": up.OpenAIBaseURL(), "ANTHROPIC_BASE_URL": up.AnthropicBaseURL()}[k]
			})
			if err != nil {
				t.Fatal(err)
			}
			a, err := New(t.Context(), cfg, discard())
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(a.Handler())
			defer srv.Close()
			defer a.Close()

			// The connections come up one by one: calls go to the first
			// before the second is ready. Warm up until every control
			// plane the name resolves to has served a call.
			for deadline := time.Now().Add(10 * time.Second); ; {
				served := 0
				for _, cp := range want {
					if cp.total() > 0 {
						served++
					}
				}
				if served == len(want) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after 10s of calls, %d of %d control planes have served one", served, len(want))
				}
				proxyCall(t, srv.URL)
			}
			for _, cp := range cps {
				cp.reset()
			}
			const calls = 20
			for range calls {
				proxyCall(t, srv.URL)
			}
			a.Close() // the records still queued go out, to be counted
			total := 0
			for _, cp := range cps {
				total += cp.total()
				t.Logf("control plane %s served %d RPCs: %s", cp.ip, cp.total(), cp.String())
			}
			// Round robin alternates over the ready connections; the
			// recorder's batches make the totals uneven by a few. (Per
			// method the split can be far from even: a call makes two
			// policy RPCs in a row, which alternate between the two.)
			for _, cp := range cps {
				switch got := cp.total(); {
				case !tt.serves(cp) && got > 0:
					t.Errorf("control plane %s served %d RPCs; the target does not resolve to it", cp.ip, got)
				case tt.serves(cp) && got < total/(2*len(want)):
					t.Errorf("control plane %s served %d of %d RPCs; want at least %d", cp.ip, got, total, total/(2*len(want)))
				}
			}
			if total < calls {
				t.Errorf("the control planes served %d RPCs for %d calls", total, calls)
			}
		})
	}
}

// TestLinkKeepaliveAccepted checks that the control plane accepts the
// gateway's keepalive pings: a client that pings more often than the
// server allows, or without a call open when the server forbids that,
// gets a GOAWAY (too_many_pings) and loses its connection.
func TestLinkKeepaliveAccepted(t *testing.T) {
	policy := server.KeepaliveEnforcement()
	if linkKeepalive.Time < policy.MinTime {
		t.Errorf("the gateway pings every %v; the control plane accepts no more than one ping every %v", linkKeepalive.Time, policy.MinTime)
	}
	if linkKeepalive.PermitWithoutStream && !policy.PermitWithoutStream {
		t.Error("the gateway pings an idle link; the control plane does not accept pings without a call open")
	}
	if linkKeepalive.Timeout <= 0 || linkKeepalive.Timeout >= linkKeepalive.Time {
		t.Errorf("keepalive timeout %v: want a positive duration shorter than the ping interval %v", linkKeepalive.Timeout, linkKeepalive.Time)
	}
}

// TestControlPlaneTargets checks which control plane targets the gateway
// accepts, and that the host of a DNS target counts as loopback or not
// like that of a host:port: a token sent in clear to anything but
// loopback is warned about.
func TestControlPlaneTargets(t *testing.T) {
	for _, tt := range []struct {
		target   string
		ok       bool
		loopback bool
	}{
		{"127.0.0.1:9000", true, true},
		{"[::1]:9000", true, true},
		{"cp.internal:9000", true, false},
		{"dns:///cp.internal:9000", true, false},
		{"dns:///localhost:9000", true, true},
		{"dns:///127.0.0.1:9000", true, true},
		{"dns://10.0.0.10:53/cp.internal:9000", true, false},
		{"dns://10.0.0.10/localhost:9000", true, true},
		{"cp.internal", false, false},
		{"dns:///cp.internal", false, false},
		{"dns://10.0.0.10", false, false},
	} {
		t.Run(tt.target, func(t *testing.T) {
			cfg, err := config.Load(nil, func(k string) string {
				return map[string]string{"LUTHIEN_CONTROL_PLANE": tt.target, "LUTHIEN_CONTROL_PLANE_TOKEN": linkToken}[k]
			})
			if (err == nil) != tt.ok {
				t.Fatalf("config.Load: %v, want ok %v", err, tt.ok)
			}
			if !tt.ok {
				return
			}
			var logs bytes.Buffer
			if _, err := linkOptions(cfg, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
				t.Fatal(err)
			}
			if warned := strings.Contains(logs.String(), "in clear"); warned == tt.loopback {
				t.Errorf("warned about the token in clear: %v, want %v (log: %q)", warned, !tt.loopback, logs.String())
			}
		})
	}
}

// proxyCall sends one chat completion through the gateway at url.
func proxyCall(t *testing.T, url string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-fake","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk-client-key")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("chat completion: %d %s", resp.StatusCode, body)
	}
}

// loopbackPair listens on one port of two loopback addresses: 127.0.0.1
// and ::1, or 127.0.0.2 where IPv6 is off. It skips the test when
// neither second address can be had.
func loopbackPair(t *testing.T) [2]net.Listener {
	t.Helper()
	for range 5 { // the port may be taken on the second address
		first, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(first.Addr().String())
		for _, host := range []string{"::1", "127.0.0.2"} {
			if second, err := net.Listen("tcp", net.JoinHostPort(host, port)); err == nil {
				return [2]net.Listener{first, second}
			}
		}
		first.Close()
	}
	t.Skip("no second loopback address (::1 or 127.0.0.2) to listen on beside 127.0.0.1")
	return [2]net.Listener{}
}

// countedControlPlane is a control plane served on a listener, with the
// count of the RPCs it served by method.
type countedControlPlane struct {
	ip     net.IP
	mu     sync.Mutex
	counts map[string]int
}

// serveCounted serves a control plane that wants token on lis, with the
// network options of the control plane binary.
func serveCounted(t *testing.T, lis net.Listener, token string) *countedControlPlane {
	t.Helper()
	cp := &countedControlPlane{ip: lis.Addr().(*net.TCPAddr).IP, counts: map[string]int{}}
	srv, err := server.New(server.Config{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	opts := append(server.NetworkOptions(),
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			cp.add(info.FullMethod)
			return handler(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			cp.add(info.FullMethod)
			return handler(srv, ss)
		}))
	gs := srv.NewGRPCServer(opts...)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(func() {
		srv.Shutdown()
		gs.Stop()
		_ = srv.Close(context.Background())
	})
	return cp
}

func (cp *countedControlPlane) add(method string) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.counts[method[strings.LastIndexByte(method, '/')+1:]]++
}

func (cp *countedControlPlane) reset() {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	clear(cp.counts)
}

func (cp *countedControlPlane) total() int {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	n := 0
	for _, c := range cp.counts {
		n += c
	}
	return n
}

// String lists the counts by method.
func (cp *countedControlPlane) String() string {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	var parts []string
	for m, c := range cp.counts {
		parts = append(parts, fmt.Sprintf("%s %d", m, c))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// serveDNS runs a DNS server over UDP on loopback that answers every A
// and AAAA question with the addresses of ips of that family (and any
// other question with no record), and returns its address.
func serveDNS(t *testing.T, ips []net.IP) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := dnsAnswer(buf[:n], ips); resp != nil {
				_, _ = pc.WriteTo(resp, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

// DNS record types and class (RFC 1035, RFC 3596).
const (
	dnsTypeA    = 1
	dnsTypeAAAA = 28
	dnsClassIN  = 1
)

// dnsAnswer returns the authoritative answer to a DNS query with one
// question (RFC 1035, section 4.1), or nil when q is not such a query.
// An EDNS record of the query (the additional section) is ignored.
func dnsAnswer(q []byte, ips []net.IP) []byte {
	const header = 12
	if len(q) < header || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil
	}
	end := header
	for end < len(q) && q[end] != 0 { // the name's labels, uncompressed in a query
		end += 1 + int(q[end])
	}
	end += 1 + 4 // the root label, the type and the class
	if end > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[end-4:])
	var rdata [][]byte
	for _, ip := range ips {
		switch ip4 := ip.To4(); {
		case qtype == dnsTypeA && ip4 != nil:
			rdata = append(rdata, ip4)
		case qtype == dnsTypeAAAA && ip4 == nil:
			rdata = append(rdata, ip.To16())
		}
	}
	r := make([]byte, header, 512)
	copy(r, q[:2]) // the query's ID
	// A response (QR), authoritative (AA), recursion available (RA),
	// recursion desired as the query had it (RD); no error.
	binary.BigEndian.PutUint16(r[2:], 0x8000|0x0400|0x0080|binary.BigEndian.Uint16(q[2:])&0x0100)
	binary.BigEndian.PutUint16(r[4:], 1)
	binary.BigEndian.PutUint16(r[6:], uint16(len(rdata)))
	r = append(r, q[header:end]...)
	for _, d := range rdata {
		r = append(r, 0xc0, header) // the name: a pointer to the question's
		r = binary.BigEndian.AppendUint16(r, qtype)
		r = binary.BigEndian.AppendUint16(r, dnsClassIN)
		r = binary.BigEndian.AppendUint32(r, 1) // TTL in seconds
		r = binary.BigEndian.AppendUint16(r, uint16(len(d)))
		r = append(r, d...)
	}
	return r
}
