package cluster

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// Embedded configures a NATS server run inside the bluetick process, for
// small clusters that do not want to operate NATS separately: each node
// embeds one, and the embedded servers route to each other.
type Embedded struct {
	// Listen is the client address other nodes may connect to
	// ("127.0.0.1:4222").
	Listen string
	// ClusterListen is the route address for the other embedded servers
	// ("10.0.0.1:6222"); empty runs a standalone server.
	ClusterListen string
	// Routes are the other embedded servers' route URLs
	// ("nats://10.0.0.2:6222,nats://10.0.0.3:6222").
	Routes string
	// StoreDir holds JetStream data (the directory bucket lives in memory,
	// but JetStream needs a directory).
	StoreDir string
	// Name names the server (the node's name).
	Name string
}

// StartEmbedded starts the embedded NATS server and returns its client URL
// and a stop function.
func StartEmbedded(e Embedded) (url string, stop func(), err error) {
	host, portS, err := net.SplitHostPort(e.Listen)
	if err != nil {
		return "", nil, fmt.Errorf("cluster.embedded_listen %q: %v (use host:port)", e.Listen, err)
	}
	port, _ := strconv.Atoi(portS)
	opts := &natsserver.Options{
		ServerName: e.Name,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   e.StoreDir,
		NoSigs:     true,
	}
	if e.ClusterListen != "" {
		ch, cp, err := net.SplitHostPort(e.ClusterListen)
		if err != nil {
			return "", nil, fmt.Errorf("cluster.embedded_cluster_listen %q: %v (use host:port)", e.ClusterListen, err)
		}
		opts.Cluster.Name = "bluetick"
		opts.Cluster.Host = ch
		opts.Cluster.Port, _ = strconv.Atoi(cp)
		if e.Routes != "" {
			opts.Routes = natsserver.RoutesFromStr(e.Routes)
		}
	}
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		return "", nil, fmt.Errorf("embedded NATS: %v", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(15 * time.Second) {
		ns.Shutdown()
		return "", nil, fmt.Errorf("embedded NATS did not start on %s", e.Listen)
	}
	url = ns.ClientURL()
	if strings.HasPrefix(host, "0.0.0.0") || host == "" || host == "::" {
		url = "nats://127.0.0.1:" + strconv.Itoa(ns.Addr().(*net.TCPAddr).Port)
	}
	return url, func() { ns.Shutdown(); ns.WaitForShutdown() }, nil
}
