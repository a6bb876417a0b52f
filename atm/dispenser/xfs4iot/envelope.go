package xfs4iot

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Version is the message version this driver sends and expects ("2.0",
// XFS4IoT 2023-2 message format).
const Version = "2.0"

// Message types (header "type").
const (
	typeCommand     = "command"
	typeAcknowledge = "acknowledge"
	typeEvent       = "event"
	typeCompletion  = "completion"
	typeUnsolicited = "unsolicited"
)

// Header is the XFS4IoT message header (2023-2 and later: version,
// timeout and status in the header, completion code and error description
// too).
type Header struct {
	Name             string  `json:"name"`
	RequestID        int64   `json:"requestId,omitempty"`
	Type             string  `json:"type"`
	Version          string  `json:"version"`
	Timeout          *int64  `json:"timeout,omitempty"`
	Status           *string `json:"status,omitempty"`
	CompletionCode   string  `json:"completionCode,omitempty"`
	ErrorDescription string  `json:"errorDescription,omitempty"`
}

// Message is one XFS4IoT message: a header and a payload (absent or null
// for commands without parameters).
type Message struct {
	Header  Header          `json:"header"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// ErrMalformed is a message from the service that is not a valid XFS4IoT
// message.
var ErrMalformed = errors.New("xfs4iot: malformed message")

// ParseMessage parses one message from the service strictly: one JSON
// object with exactly the fields header and payload, a header without
// unknown fields, a known type, a name and a version; acknowledges,
// events and completions carry a positive request ID, unsolicited events
// none.
func ParseMessage(b []byte) (Message, error) {
	var m Message
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&m); err != nil {
		return Message{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if d.More() {
		return Message{}, fmt.Errorf("%w: data after the message", ErrMalformed)
	}
	h := m.Header
	switch {
	case h.Name == "":
		return Message{}, fmt.Errorf("%w: no name", ErrMalformed)
	case h.Version == "":
		return Message{}, fmt.Errorf("%w: %s has no version", ErrMalformed, h.Name)
	}
	switch h.Type {
	case typeAcknowledge, typeEvent, typeCompletion:
		if h.RequestID <= 0 {
			return Message{}, fmt.Errorf("%w: %s %s without a request ID", ErrMalformed, h.Type, h.Name)
		}
	case typeUnsolicited:
		if h.RequestID != 0 {
			return Message{}, fmt.Errorf("%w: unsolicited %s with request ID %d", ErrMalformed, h.Name, h.RequestID)
		}
	default:
		return Message{}, fmt.Errorf("%w: type %q from a service", ErrMalformed, h.Type)
	}
	if h.Type == typeCompletion && h.CompletionCode == "" {
		return Message{}, fmt.Errorf("%w: completion of %s without a completion code", ErrMalformed, h.Name)
	}
	if h.Type != typeAcknowledge && h.Status != nil {
		return Message{}, fmt.Errorf("%w: status in a %s", ErrMalformed, h.Type)
	}
	if len(m.Payload) > 0 && !bytes.Equal(m.Payload, []byte("null")) && m.Payload[0] != '{' {
		return Message{}, fmt.Errorf("%w: %s payload is not an object", ErrMalformed, h.Name)
	}
	return m, nil
}
