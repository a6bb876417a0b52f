// Package connlimit bounds what a listener of the simulators (proxysim,
// hostsim) gives a connection before it has proved anything: how many
// connections may be open in total and from one source address, how long
// a new connection may stay silent, how long one frame may take to arrive,
// and how long a link may stay idle between frames. Deadlines are set on
// the net.Conn, so they are in the system's time, as the kernel keeps it.
package connlimit

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Limits are what a listener allows. Zero fields take the defaults.
type Limits struct {
	MaxConns     int           // open connections in total (default 1000)
	MaxPerSource int           // open connections from one IP address (default 16)
	FirstByte    time.Duration // from accept to the first byte (default 10 s)
	Frame        time.Duration // from a frame's first byte to its last (default 10 s)
	Idle         time.Duration // between two frames (default 5 min)
	SignOn       time.Duration // from a sign-on's answer to its confirmation (default 15 s; hostsim)
}

// Defaults of Limits.
const (
	DefaultMaxConns     = 1000
	DefaultMaxPerSource = 16
	DefaultFirstByte    = 10 * time.Second
	DefaultFrame        = 10 * time.Second
	DefaultIdle         = 5 * time.Minute
	DefaultSignOn       = 15 * time.Second
)

// WithDefaults returns l with its zero fields set to the defaults.
func (l Limits) WithDefaults() Limits {
	set := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if l.MaxConns == 0 {
		l.MaxConns = DefaultMaxConns
	}
	if l.MaxPerSource == 0 {
		l.MaxPerSource = DefaultMaxPerSource
	}
	set(&l.FirstByte, DefaultFirstByte)
	set(&l.Frame, DefaultFrame)
	set(&l.Idle, DefaultIdle)
	set(&l.SignOn, DefaultSignOn)
	return l
}

// Validate refuses negative limits.
func (l Limits) Validate() error {
	if l.MaxConns < 0 || l.MaxPerSource < 0 || l.FirstByte < 0 || l.Frame < 0 || l.Idle < 0 || l.SignOn < 0 {
		return errors.New("connlimit: limits must not be negative")
	}
	return nil
}

// ErrTooMany refuses a connection over a cap.
var ErrTooMany = errors.New("connlimit: too many connections")

// Gate counts open connections against the caps of its Limits.
type Gate struct {
	lim   Limits
	mu    sync.Mutex
	total int
	per   map[string]int
}

// NewGate returns a Gate for lim (defaults applied).
func NewGate(lim Limits) *Gate {
	return &Gate{lim: lim.WithDefaults(), per: map[string]int{}}
}

// Limits returns the gate's limits, defaults applied.
func (g *Gate) Limits() Limits { return g.lim }

// Admit counts nc in, or refuses it (ErrTooMany) when a cap is reached.
// release, called once when the connection closes, counts it out. Admit
// also sets the first-byte deadline.
func (g *Gate) Admit(nc net.Conn) (release func(), err error) {
	src := source(nc)
	g.mu.Lock()
	switch {
	case g.total >= g.lim.MaxConns:
		g.mu.Unlock()
		return nil, fmt.Errorf("%w: %d open (limit %d)", ErrTooMany, g.total, g.lim.MaxConns)
	case g.per[src] >= g.lim.MaxPerSource:
		n := g.per[src]
		g.mu.Unlock()
		return nil, fmt.Errorf("%w: %d open from %s (limit %d)", ErrTooMany, n, src, g.lim.MaxPerSource)
	}
	g.total++
	g.per[src]++
	g.mu.Unlock()
	_ = nc.SetReadDeadline(time.Now().Add(g.lim.FirstByte))
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			g.total--
			if g.per[src]--; g.per[src] <= 0 {
				delete(g.per, src)
			}
			g.mu.Unlock()
		})
	}, nil
}

// Open returns how many connections are counted in.
func (g *Gate) Open() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.total
}

func source(nc net.Conn) string {
	addr := nc.RemoteAddr().String()
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// Peeker is what Frames needs of the reader a frame is read from
// (*bufio.Reader has it).
type Peeker interface {
	Peek(n int) ([]byte, error)
}

// Frames sets the read deadlines around each frame of one connection:
// before a frame, the link may be silent for Idle (FirstByte for the first
// one, as Admit set); once its first byte is there, the rest must arrive
// within Frame.
type Frames struct {
	nc    net.Conn
	lim   Limits
	first bool
}

// NewFrames returns the deadline keeper of nc under g's limits.
func (g *Gate) NewFrames(nc net.Conn) *Frames {
	return &Frames{nc: nc, lim: g.lim, first: true}
}

// Next waits for the first byte of the next frame (under the idle or
// first-byte deadline), then gives the frame its own deadline. Call it
// before reading each frame from r.
func (f *Frames) Next(r Peeker) error {
	if !f.first {
		_ = f.nc.SetReadDeadline(time.Now().Add(f.lim.Idle))
	}
	f.first = false
	if _, err := r.Peek(1); err != nil {
		return err
	}
	return f.nc.SetReadDeadline(time.Now().Add(f.lim.Frame))
}

// FileLimits is the JSON form of Limits in the simulators' configuration
// files: durations as Go duration strings ("10s").
type FileLimits struct {
	MaxConns     int    `json:"maxConns,omitempty"`
	MaxPerSource int    `json:"maxPerSource,omitempty"`
	FirstByte    string `json:"firstByte,omitempty"`
	Frame        string `json:"frame,omitempty"`
	Idle         string `json:"idle,omitempty"`
	SignOn       string `json:"signOn,omitempty"`
}

// Limits parses f; an empty duration takes the default.
func (f FileLimits) Limits() (Limits, error) {
	var errs []error
	dur := func(name, s string) time.Duration {
		if s == "" {
			return 0
		}
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be a positive duration such as \"10s\"", name))
		}
		return d
	}
	l := Limits{MaxConns: f.MaxConns, MaxPerSource: f.MaxPerSource,
		FirstByte: dur("firstByte", f.FirstByte), Frame: dur("frame", f.Frame), Idle: dur("idle", f.Idle),
		SignOn: dur("signOn", f.SignOn)}
	if err := l.Validate(); err != nil {
		errs = append(errs, err)
	}
	return l, errors.Join(errs...)
}
