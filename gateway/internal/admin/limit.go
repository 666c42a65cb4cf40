package admin

import (
	"net"
	"sync"
	"time"
)

// Failed key attempts are limited per client address, so the admin key
// cannot be guessed at speed: after maxFailures within failWindow an
// address is refused until the window has passed.
const (
	maxFailures   = 10
	failWindow    = time.Minute
	maxFailingIPs = 4096 // bound of the table; the oldest entries go first
)

type failLimiter struct {
	now func() time.Time
	mu  sync.Mutex
	by  map[string]*failures
}

type failures struct {
	count int
	since time.Time
}

func newFailLimiter(now func() time.Time) *failLimiter {
	return &failLimiter{now: now, by: map[string]*failures{}}
}

func (l *failLimiter) blocked(ip net.IP) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.by[ip.String()]
	if f == nil {
		return false
	}
	if l.now().Sub(f.since) > failWindow {
		delete(l.by, ip.String())
		return false
	}
	return f.count >= maxFailures
}

func (l *failLimiter) fail(ip net.IP) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	key := ip.String()
	f := l.by[key]
	if f == nil || now.Sub(f.since) > failWindow {
		if len(l.by) >= maxFailingIPs {
			l.evict(now)
		}
		f = &failures{since: now}
		l.by[key] = f
	}
	f.count++
}

// evict drops expired entries, and the oldest one if none has expired.
func (l *failLimiter) evict(now time.Time) {
	var oldest string
	var oldestAt time.Time
	for k, f := range l.by {
		if now.Sub(f.since) > failWindow {
			delete(l.by, k)
			continue
		}
		if oldest == "" || f.since.Before(oldestAt) {
			oldest, oldestAt = k, f.since
		}
	}
	if len(l.by) >= maxFailingIPs {
		delete(l.by, oldest)
	}
}
