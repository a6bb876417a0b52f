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
	pending map[int64]*inbox
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
	c := &conn{ws: ws, log: log, url: url, onUnsolicited: onUnsolicited, pending: map[int64]*inbox{}, done: make(chan struct{})}
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
			if m.Header.Type == typeCompletion || m.Header.Status != nil {
				c.mu.Lock()
				delete(c.pending, m.Header.RequestID)
				c.mu.Unlock()
			}
			continue
		}
		if perr := ch.put(m); perr != nil {
			err = perr
			break
		}
		if m.Header.Type == typeCompletion || m.Header.Status != nil {
			c.mu.Lock()
			delete(c.pending, m.Header.RequestID)
			c.mu.Unlock()
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

// inbox collects the messages of one command in flight and checks their
// sequence as they arrive (on the reader goroutine): one acknowledge, then
// events, then one completion. The caller is woken once, when the
// command is over (completion, or an acknowledge that refused it), and
// then takes the events and the final message in order: one wake-up per
// command, not one per message.
type inbox struct {
	name string

	mu     sync.Mutex
	acked  bool
	events []Message
	final  *Message
	over   chan struct{} // closed when final is set
}

// refusals are the acknowledge statuses that mean "not accepted, never
// ran"; any other status is a protocol error whose outcome is unknown.
var refusals = map[string]bool{"invalidMessage": true, "invalidRequestID": true, "tooManyRequests": true}

func newInbox(name string) *inbox { return &inbox{name: name, over: make(chan struct{})} }

// put adds m, or says how it breaks the sequence.
func (b *inbox) put(m Message) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.final != nil:
		return fmt.Errorf("%w: %s %s after the command ended", ErrMalformed, m.Header.Type, m.Header.Name)
	case m.Header.Type != typeEvent && m.Header.Name != b.name:
		return fmt.Errorf("%w: %s answered with %s", ErrMalformed, b.name, m.Header.Name)
	case m.Header.Type == typeAcknowledge && b.acked:
		return fmt.Errorf("%w: second acknowledge of %s", ErrMalformed, b.name)
	case m.Header.Type != typeAcknowledge && !b.acked:
		return fmt.Errorf("%w: %s of %s before its acknowledge", ErrMalformed, m.Header.Type, b.name)
	}
	switch m.Header.Type {
	case typeAcknowledge:
		b.acked = true
		if m.Header.Status != nil && !refusals[*m.Header.Status] {
			return fmt.Errorf("%w: acknowledge of %s with status %q", ErrMalformed, b.name, *m.Header.Status)
		}
		if m.Header.Status != nil {
			b.final = &m
			close(b.over)
		}
	case typeEvent:
		if len(b.events) >= maxEvents {
			return fmt.Errorf("%w: more than %d events for %s", ErrMalformed, maxEvents, b.name)
		}
		b.events = append(b.events, m)
	case typeCompletion:
		b.final = &m
		close(b.over)
	}
	return nil
}

// result returns the events and the final message once the command is
// over.
func (b *inbox) result() ([]Message, Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.events, *b.final
}

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
	ch := newInbox(name)
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

	msg, err := encodeCommand(name, id, timeoutMS, raw)
	if err != nil {
		return Message{}, err
	}
	if err := c.ws.Write(ctx, websocket.MessageText, msg); err != nil {
		c.close(err)
		return Message{}, fmt.Errorf("%w: send %s: %v", ErrLinkLost, name, err)
	}
	select {
	case <-ch.over:
	case <-ctx.Done():
		return Message{}, fmt.Errorf("xfs4iot: %s: %w", name, ctx.Err())
	case <-c.done:
		select {
		case <-ch.over: // it ended just before the link
		default:
			return Message{}, fmt.Errorf("%w: %s: %v", ErrLinkLost, name, c.err)
		}
	}
	completed = true
	events, m := ch.result()
	if m.Header.Type == typeAcknowledge {
		return Message{}, &RefusedError{Name: name, Status: *m.Header.Status}
	}
	if onEvent != nil {
		for _, e := range events {
			onEvent(e)
		}
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

// encodeCommand writes a command message. The payload, already JSON, is
// put in as it is rather than encoded a second time.
func encodeCommand(name string, id, timeoutMS int64, payload json.RawMessage) ([]byte, error) {
	to := timeoutMS
	h, err := json.Marshal(Header{Name: name, RequestID: id, Type: typeCommand, Version: Version, Timeout: &to})
	if err != nil {
		return nil, err
	}
	if payload == nil {
		payload = json.RawMessage("null")
	}
	b := make([]byte, 0, len(h)+len(payload)+24)
	b = append(b, `{"header":`...)
	b = append(b, h...)
	b = append(b, `,"payload":`...)
	b = append(b, payload...)
	return append(b, '}'), nil
}
