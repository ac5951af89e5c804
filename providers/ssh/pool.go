package ssh

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Pool hands out one shared Host per Config.Key (user@address:port and jump
// host). It is safe for concurrent use: callers asking for the same host at
// once wait for a single dial. Hosts from a Pool belong to it; close the
// Pool, not them. A Host whose connection has dropped (or was closed) is
// dialled again on the next Get.
type Pool struct {
	mu     sync.Mutex
	hosts  map[string]*poolEntry
	closed bool
}

type poolEntry struct {
	ready chan struct{} // closed when the dial finished
	host  *Host
	err   error
}

// NewPool returns an empty Pool.
func NewPool() *Pool { return &Pool{hosts: map[string]*poolEntry{}} }

// Get returns the pool's Host for cfg, dialling it if needed. A jump host is
// taken from the pool as well, so hosts behind one bastion share its
// connection.
func (p *Pool) Get(ctx context.Context, cfg Config) (*Host, error) {
	key := cfg.Key()
	for range 2 { // a dead or failed entry is replaced once
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, errors.New("ssh pool is closed")
		}
		e, ok := p.hosts[key]
		if !ok {
			e = &poolEntry{ready: make(chan struct{})}
			p.hosts[key] = e
			p.mu.Unlock()
			e.host, e.err = p.dial(ctx, cfg)
			close(e.ready)
			if e.err != nil {
				p.drop(key, e)
			}
			return e.host, e.err
		}
		p.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.err == nil && e.host.alive() {
			return e.host, nil
		}
		p.drop(key, e)
		if e.host != nil {
			_ = e.host.Close()
		}
	}
	return nil, fmt.Errorf("ssh %s: connection keeps dropping", key)
}

func (p *Pool) dial(ctx context.Context, cfg Config) (*Host, error) {
	if cfg.Jump == nil {
		return dialVia(ctx, cfg, nil)
	}
	jump, err := p.Get(ctx, *cfg.Jump)
	if err != nil {
		return nil, fmt.Errorf("jump host for %s: %w", cfg.name(), err)
	}
	return dialVia(ctx, cfg, jump)
}

// drop forgets e if it is still the entry for key.
func (p *Pool) drop(key string, e *poolEntry) {
	p.mu.Lock()
	if p.hosts[key] == e {
		delete(p.hosts, key)
	}
	p.mu.Unlock()
}

// Close closes every Host in the pool; later Gets fail.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	entries := p.hosts
	p.hosts = map[string]*poolEntry{}
	p.mu.Unlock()
	var errs []error
	for _, e := range entries {
		<-e.ready
		if e.host != nil {
			if err := e.host.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
