package etcdcluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
)

// Client files on a control plane: etcd's CA and the health-check client
// certificate kforge issues on every control plane, which etcd (client
// certificate auth, no etcd users) lets manage members.
const (
	caFile   = layout.PKIDir + "/etcd/ca.crt"
	certFile = layout.PKIDir + "/etcd/healthcheck-client.crt"
	keyFile  = layout.PKIDir + "/etcd/healthcheck-client.key"
)

// LocalEndpoint is the control plane's own etcd member, as it sees it.
var LocalEndpoint = net.JoinHostPort("127.0.0.1", strconv.Itoa(layout.EtcdClientPort))

// Dial returns an etcd client for the etcd of the control plane h, with
// its CA and client certificate read from h and every connection opened
// by h itself (forwarded over SSH for a remote host), so that etcd's
// port need not be open to the machine kforge runs on. endpoints are as h
// sees them; LocalEndpoint when empty.
func Dial(ctx context.Context, h host.Host, endpoints ...string) (*clientv3.Client, error) {
	if len(endpoints) == 0 {
		endpoints = []string{LocalEndpoint}
	}
	read := func(p string) ([]byte, error) {
		b, err := h.ReadFile(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("etcd client on %s: %w", h.Name(), err)
		}
		return b, nil
	}
	caPEM, err := read(caFile)
	if err != nil {
		return nil, err
	}
	certPEM, err := read(certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := read(keyFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("etcd client on %s: %s holds no certificate", h.Name(), caFile)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("etcd client on %s: %s: %w", h.Name(), certFile, err)
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		TLS:         &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
		DialOptions: []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return host.Dial(ctx, h, "tcp", addr)
		})},
		Logger: zap.NewNop(),
		// A member that went away must not hang a call forever.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("etcd client on %s: %w", h.Name(), err)
	}
	return c, nil
}

// Healthy tells whether the member answers a status request within a few
// seconds, asked through c's connections.
func Healthy(ctx context.Context, c *clientv3.Client, m Member) bool {
	for _, u := range m.ClientURLs {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := c.Status(ctx, u)
		cancel()
		if err == nil {
			return true
		}
	}
	return false
}
