// Package kube is how kforge talks to a cluster's API server once the
// control plane runs: a Client built from a kubeconfig (admin.conf read
// through host.Host), bounded waits for the API server and for a node, and
// server-side apply of YAML manifests under the field manager "kforge".
package kube

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"

	"kforge.dev/kforge/host"
)

// FieldManager owns every field kforge applies.
const FieldManager = "kforge"

// RequestTimeout bounds one request to the API server.
const RequestTimeout = 30 * time.Second

// Client talks to one API server.
type Client struct {
	// Config is the REST configuration the clients below share.
	Config  *rest.Config
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface

	mapper *restmapper.DeferredDiscoveryRESTMapper
}

// RESTConfig reads a kubeconfig's current context. A non-empty server
// replaces the kubeconfig's server URL, e.g. to reach the node's own API
// server rather than the control-plane endpoint.
func RESTConfig(kubeconfig []byte, server string) (*rest.Config, error) {
	cc, err := clientcmd.NewClientConfigFromBytes(kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	if server != "" {
		cfg.Host = server
	}
	cfg.Timeout = RequestTimeout
	// kforge sends a burst of requests when it applies addons; the
	// default 5 QPS would throttle it for seconds.
	cfg.QPS, cfg.Burst = 50, 100
	cfg.UserAgent = "kforge"
	return cfg, nil
}

// New returns a Client for a kubeconfig; server, when not empty, replaces
// its server URL.
func New(kubeconfig []byte, server string) (*Client, error) {
	cfg, err := RESTConfig(kubeconfig, server)
	if err != nil {
		return nil, err
	}
	return NewForConfig(cfg)
}

// NewForConfig returns a Client for a REST configuration.
func NewForConfig(cfg *rest.Config) (*Client, error) {
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", cfg.Host, err)
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", cfg.Host, err)
	}
	disco, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", cfg.Host, err)
	}
	return &Client{
		Config:  cfg,
		Kube:    kc,
		Dynamic: dc,
		mapper:  restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disco)),
	}, nil
}

// FromHost reads a kubeconfig file (e.g. /etc/kubernetes/admin.conf) on h
// and returns a Client for it; server, when not empty, replaces its server
// URL.
func FromHost(ctx context.Context, h host.Host, path, server string) (*Client, error) {
	data, err := h.ReadFile(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	c, err := New(data, server)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Server is the URL the Client talks to.
func (c *Client) Server() string { return c.Config.Host }

// ServerTime is the API server's clock, from the Date header of its answer
// to /version (one-second resolution), so that times the cluster records
// can be compared without trusting this machine's clock.
func (c *Client) ServerTime(ctx context.Context) (time.Time, error) {
	hc, err := rest.HTTPClientFor(c.Config)
	if err != nil {
		return time.Time{}, fmt.Errorf("client for %s: %w", c.Server(), err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.Config.Host, "/")+"/version", nil)
	if err != nil {
		return time.Time{}, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return time.Time{}, fmt.Errorf("API server %s: %w", c.Server(), err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	t, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return time.Time{}, fmt.Errorf("API server %s: no Date in its answer to /version: %w", c.Server(), err)
	}
	return t, nil
}
