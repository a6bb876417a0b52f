package xfs4iot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/coder/websocket"
)

// ErrLinkLost: the connection to the service ended while a command was in
// flight. The command's outcome is unknown: the device may have acted.
var ErrLinkLost = errors.New("xfs4iot: connection lost, command outcome unknown")

// RefusedError is a command the service did not accept (its acknowledge
// carried a status): the command never ran.
type RefusedError struct {
	Name   string
	Status string // invalidMessage, invalidRequestID, tooManyRequests, ...
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("xfs4iot: %s not accepted: %s", e.Name, e.Status)
}

// CompletionError is a command that ran and completed with a code other
// than success.
type CompletionError struct {
	Name             string
	Code             string // completionCode
	ErrorCode        string // payload errorCode with commandErrorCode
	ErrorDescription string
	Payload          json.RawMessage
}

func (e *CompletionError) Error() string {
	s := fmt.Sprintf("xfs4iot: %s completed with %s", e.Name, e.Code)
	if e.ErrorCode != "" {
		s += "/" + e.ErrorCode
	}
	if e.ErrorDescription != "" {
		s += ": " + e.ErrorDescription
	}
	return s
}

// conn is one WebSocket connection to an XFS4IoT endpoint (the publisher
// or a service). A reader goroutine hands each message to the command it
// belongs to by request ID, and unsolicited events to onUnsolicited.
type conn struct {
	ws  *websocket.Conn
	log *slog.Logger
	url string

	onUnsolicited func(Message)

	mu      sync.Mutex
	next    int64
	pending map[int64]chan Message
	done    chan struct{} // closed when the connection ends
	err     error         // why it ended
}

// maxMessage bounds one message from the service.
const maxMessage = 1 << 20

func dial(ctx context.Context, url string, client *http.Client, log *slog.Logger, onUnsolicited func(Message)) (*conn, error) {
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		return nil, fmt.Errorf("xfs4iot: connect %s: %w", url, err)
	}
	ws.SetReadLimit(maxMessage)
	c := &conn{ws: ws, log: log, url: url, onUnsolicited: onUnsolicited, pending: map[int64]chan Message{}, done: make(chan struct{})}
	go c.readLoop()
	return c, nil
}

func (c *conn) readLoop() {
	var err error
	for {
		var typ websocket.MessageType
		var b []byte
		typ, b, err = c.ws.Read(context.Background())
		if err != nil {
			break
		}
		if typ != websocket.MessageText {
			err = fmt.Errorf("%w: binary frame", ErrMalformed)
			break
		}
		m, perr := ParseMessage(b)
		if perr != nil {
			// A service that speaks nonsense cannot be trusted with the
			// commands in flight either: drop the link.
			err = perr
			break
		}
		if m.Header.Type == typeUnsolicited {
			if c.onUnsolicited != nil {
				c.onUnsolicited(m)
			}
			continue
		}
		c.mu.Lock()
		ch, ok := c.pending[m.Header.RequestID]
		if ok && m.Header.Type == typeCompletion {
			delete(c.pending, m.Header.RequestID)
		}
		c.mu.Unlock()
		if !ok {
			err = fmt.Errorf("%w: %s %s for request %d, which is not in flight", ErrMalformed, m.Header.Type, m.Header.Name, m.Header.RequestID)
			break
		}
		if ch == nil {
			// The caller gave up waiting (its context ended); the
			// service still reports on the command.
			c.log.Warn("xfs4iot message for an abandoned command", "name", m.Header.Name, "type", m.Header.Type,
				"request_id", m.Header.RequestID, "completion", m.Header.CompletionCode)
			continue
		}
		select {
		case ch <- m:
		default:
			err = fmt.Errorf("%w: more than %d messages for %s", ErrMalformed, maxEvents, m.Header.Name)
		}
		if err != nil {
			break
		}
	}
	c.close(err)
}

// close ends the connection with err as the reason.
func (c *conn) close(err error) {
	c.mu.Lock()
	select {
	case <-c.done:
		c.mu.Unlock()
		return
	default:
	}
	if err == nil {
		err = errors.New("closed")
	}
	c.err = err
	close(c.done)
	c.mu.Unlock()
	c.ws.Close(websocket.StatusNormalClosure, "")
	c.log.Warn("xfs4iot connection ended", "url", c.url, "err", err)
}

// alive reports whether the connection is still up.
func (c *conn) alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// maxEvents bounds the events one command may produce before its
// completion (a dispense of many notes produces a few).
const maxEvents = 64

// do sends a command and waits for its completion, passing its events to
// onEvent. timeoutMS goes in the header (0: none). A non-success
// completion is a *CompletionError, a refused command a *RefusedError;
// ErrLinkLost or the context's error mean the outcome is unknown.
func (c *conn) do(ctx context.Context, name string, payload any, timeoutMS int64, onEvent func(Message)) (Message, error) {
	var raw json.RawMessage
	if payload != nil {
		b, err := json.Marshal(payload)
		if err != nil {
			return Message{}, fmt.Errorf("xfs4iot: %s payload: %w", name, err)
		}
		raw = b
	}
	ch := make(chan Message, maxEvents+2)
	c.mu.Lock()
	select {
	case <-c.done:
		c.mu.Unlock()
		return Message{}, fmt.Errorf("%w: %v", ErrLinkLost, c.err)
	default:
	}
	c.next++
	id := c.next
	c.pending[id] = ch
	c.mu.Unlock()
	completed := false
	defer func() {
		c.mu.Lock()
		if completed {
			delete(c.pending, id)
		} else if _, ok := c.pending[id]; ok {
			c.pending[id] = nil // abandoned: its late messages are dropped
		}
		c.mu.Unlock()
	}()

	to := timeoutMS
	msg, err := json.Marshal(Message{Header: Header{Name: name, RequestID: id, Type: typeCommand, Version: Version, Timeout: &to}, Payload: raw})
	if err != nil {
		return Message{}, err
	}
	if err := c.ws.Write(ctx, websocket.MessageText, msg); err != nil {
		c.close(err)
		return Message{}, fmt.Errorf("%w: send %s: %v", ErrLinkLost, name, err)
	}
	acked, events := false, 0
	for {
		select {
		case <-ctx.Done():
			return Message{}, fmt.Errorf("xfs4iot: %s: %w", name, ctx.Err())
		case <-c.done:
			// Messages the reader delivered before the end still count.
			select {
			case m := <-ch:
				ch <- m
				continue
			default:
			}
			return Message{}, fmt.Errorf("%w: %s: %v", ErrLinkLost, name, c.err)
		case m := <-ch:
			if m.Header.Type != typeEvent && m.Header.Name != name {
				c.close(fmt.Errorf("%w: %s answered with %s", ErrMalformed, name, m.Header.Name))
				continue
			}
			switch m.Header.Type {
			case typeAcknowledge:
				if acked {
					c.close(fmt.Errorf("%w: second acknowledge of %s", ErrMalformed, name))
					continue
				}
				acked = true
				if m.Header.Status != nil {
					completed = true // no completion follows a refusal
					return Message{}, &RefusedError{Name: name, Status: *m.Header.Status}
				}
			case typeEvent:
				if !acked {
					c.close(fmt.Errorf("%w: event of %s before its acknowledge", ErrMalformed, name))
					continue
				}
				if events++; events > maxEvents {
					c.close(fmt.Errorf("%w: more than %d events for %s", ErrMalformed, maxEvents, name))
					continue
				}
				if onEvent != nil {
					onEvent(m)
				}
			case typeCompletion:
				completed = true
				if !acked {
					c.close(fmt.Errorf("%w: completion of %s before its acknowledge", ErrMalformed, name))
					continue
				}
				if m.Header.CompletionCode != "success" {
					ce := &CompletionError{Name: name, Code: m.Header.CompletionCode, ErrorDescription: m.Header.ErrorDescription, Payload: m.Payload}
					var p struct {
						ErrorCode string `json:"errorCode"`
					}
					if json.Unmarshal(m.Payload, &p) == nil {
						ce.ErrorCode = p.ErrorCode
					}
					return m, ce
				}
				return m, nil
			}
		}
	}
}
