package turn

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	pionturn "github.com/pion/turn/v4"

	"bluetick/internal/config"
)

// MaxAllocationsPerUser caps the relays one account holds at once. A call
// needs one allocation per transport tried, a group call one per peer
// connection; 16 covers that while bounding the ports one account can
// take from the relay range.
const MaxAllocationsPerUser = 16

// Server is the built-in STUN/TURN server: UDP and TCP on one address,
// relays on UDP ports from the configured range.
type Server struct {
	srv *pionturn.Server
	udp net.PacketConn
	tcp net.Listener
	now func() time.Time

	mu    sync.Mutex
	users map[string]int // allocations held, by the user part of the username
}

// Start listens on cfg.Listen (UDP and/or TCP per cfg.Transports) and
// serves STUN and TURN, accepting only credentials that Check accepts under
// secret.
func Start(cfg config.TURN, realm, secret string, log *slog.Logger) (*Server, error) {
	if secret == "" {
		return nil, errors.New("turn: empty secret")
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("turn: listen %q: %v", cfg.Listen, err)
	}
	relayIP := net.ParseIP(cfg.ExternalIP)
	if relayIP == nil {
		relayIP = net.ParseIP(host)
	}
	if relayIP == nil || relayIP.IsUnspecified() {
		return nil, fmt.Errorf("turn: listen %q has no specific IP; set turn.external_ip", cfg.Listen)
	}
	if relayIP.To4() == nil {
		return nil, fmt.Errorf("turn: relay address %s is IPv6; pion/turn relays on IPv4 only (set turn.external_ip to an IPv4 address)", relayIP)
	}
	// Relays are IPv4 sockets: bound to the listen IP when it is IPv4,
	// else to every IPv4 address.
	relayBind := "0.0.0.0"
	if ip := net.ParseIP(host); ip != nil && ip.To4() != nil {
		relayBind = host
	}
	s := &Server{now: time.Now, users: map[string]int{}}
	gen := func() pionturn.RelayAddressGenerator {
		return &pionturn.RelayAddressGeneratorPortRange{
			RelayAddress: relayIP, Address: relayBind,
			MinPort: uint16(cfg.RelayMinPort), MaxPort: uint16(cfg.RelayMaxPort),
			MaxRetries: 50,
		}
	}
	perm := permission(cfg.AllowLoopbackPeers)
	sc := pionturn.ServerConfig{
		Realm:         realm,
		LoggerFactory: slogFactory{log},
		AuthHandler: func(username, realm string, src net.Addr) ([]byte, bool) {
			pw, err := Check(secret, username, s.now())
			if err != nil {
				log.Debug("turn: credentials refused", "username", username, "from", src.String(), "err", err)
				return nil, false
			}
			return pionturn.GenerateAuthKey(username, realm, pw), true
		},
		QuotaHandler: func(username, realm string, src net.Addr) bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.users[userOf(username)] < MaxAllocationsPerUser
		},
		EventHandler: pionturn.EventHandler{
			OnAllocationCreated: func(_, _ net.Addr, _, username, _ string, _ net.Addr, _ int) { s.count(username, 1) },
			OnAllocationDeleted: func(_, _ net.Addr, _, username, _ string) { s.count(username, -1) },
		},
	}
	for _, tr := range cfg.Transports {
		switch tr {
		case "udp":
			s.udp, err = net.ListenPacket("udp", cfg.Listen)
			if err != nil {
				s.closeListeners()
				return nil, fmt.Errorf("turn: listen udp %s: %v (is another TURN server on that port?)", cfg.Listen, err)
			}
			sc.PacketConnConfigs = append(sc.PacketConnConfigs, pionturn.PacketConnConfig{PacketConn: s.udp, RelayAddressGenerator: gen(), PermissionHandler: perm})
		case "tcp":
			s.tcp, err = net.Listen("tcp", cfg.Listen)
			if err != nil {
				s.closeListeners()
				return nil, fmt.Errorf("turn: listen tcp %s: %v (is another TURN server on that port?)", cfg.Listen, err)
			}
			sc.ListenerConfigs = append(sc.ListenerConfigs, pionturn.ListenerConfig{Listener: s.tcp, RelayAddressGenerator: gen(), PermissionHandler: perm})
		}
	}
	s.srv, err = pionturn.NewServer(sc)
	if err != nil {
		s.closeListeners()
		return nil, fmt.Errorf("turn: %v", err)
	}
	return s, nil
}

// userOf is the account part of a username; allocations are counted per
// account, whatever credentials it got them with.
func userOf(username string) string {
	_, u, _ := strings.Cut(username, ":")
	return u
}

func (s *Server) count(username string, d int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := userOf(username)
	s.users[u] += d
	if s.users[u] <= 0 {
		delete(s.users, u)
	}
}

// permission refuses relaying to addresses no call peer has: loopback
// (unless allowed), unspecified and multicast.
func permission(allowLoopback bool) pionturn.PermissionHandler {
	return func(_ net.Addr, peer net.IP) bool {
		switch {
		case peer.IsUnspecified(), peer.IsMulticast():
			return false
		case peer.IsLoopback():
			return allowLoopback
		}
		return true
	}
}

// UDPAddr is the UDP listener's address (nil without UDP).
func (s *Server) UDPAddr() net.Addr {
	if s.udp == nil {
		return nil
	}
	return s.udp.LocalAddr()
}

// TCPAddr is the TCP listener's address (nil without TCP).
func (s *Server) TCPAddr() net.Addr {
	if s.tcp == nil {
		return nil
	}
	return s.tcp.Addr()
}

// Allocations is the number of live relays.
func (s *Server) Allocations() int { return s.srv.AllocationCount() }

// Close stops the listeners and every allocation.
func (s *Server) Close() error { return s.srv.Close() }

func (s *Server) closeListeners() {
	if s.udp != nil {
		s.udp.Close()
	}
	if s.tcp != nil {
		s.tcp.Close()
	}
}
