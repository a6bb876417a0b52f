package xfs4iotsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
)

// Version is the message version of every command and event the simulator
// speaks (XFS4IoT 2023-2).
const Version = "2.0"

// Header is an XFS4IoT message header (2023-2 layout). Fields not used by a
// message type are omitted when it is encoded.
type Header struct {
	Name             string `json:"name,omitempty"`
	RequestID        *int64 `json:"requestId,omitempty"`
	Type             string `json:"type"`
	Version          string `json:"version"`
	Timeout          *int64 `json:"timeout,omitempty"`
	Status           string `json:"status,omitempty"`
	CompletionCode   string `json:"completionCode,omitempty"`
	ErrorDescription string `json:"errorDescription,omitempty"`
}

// Message is one XFS4IoT message: header and payload (null when absent).
type Message struct {
	Header  Header          `json:"header"`
	Payload json.RawMessage `json:"payload"`
}

// Message types.
const (
	TypeCommand     = "command"
	TypeAcknowledge = "acknowledge"
	TypeEvent       = "event"
	TypeUnsolicited = "unsolicited"
	TypeCompletion  = "completion"
)

// Acknowledge status values.
const (
	StatusInvalidMessage   = "invalidMessage"
	StatusInvalidRequestID = "invalidRequestID"
	StatusTooManyRequests  = "tooManyRequests"
)

var (
	nameRE    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*\.[A-Za-z][A-Za-z0-9]*$`)
	versionRE = regexp.MustCompile(`^[1-9][0-9]*\.([1-9][0-9]*|0)$`)
	intRE     = regexp.MustCompile(`^-?[0-9]+$`)
)

// maxRequestID is the largest requestId accepted (the standard's integer
// is 32-bit signed).
const maxRequestID = 1<<31 - 1

// command is an incoming command whose envelope passed the checks.
type command struct {
	Name      string
	RequestID int64
	Version   string
	Timeout   int64 // ms, 0 = none
	Payload   json.RawMessage
}

// refusal is why an incoming frame is refused by its acknowledge, with what
// can be echoed.
type refusal struct {
	Status    string
	Name      string // "" if the name could not be read
	RequestID *int64 // nil if it could not be read
	Reason    string // for the log only
}

func (r *refusal) Error() string { return r.Status + ": " + r.Reason }

// parseCommand checks an incoming frame's envelope (rules 1 and 2 of the
// wire contract, section 2.2): the JSON shape, the header members and their
// types, the message type and the requestId range. The payload is only
// checked to be null, absent or an object; the command's own payload rules
// are applied later. It never panics on any input.
func parseCommand(data []byte) (*command, *refusal) {
	ref := &refusal{Status: StatusInvalidMessage}
	bad := func(format string, args ...any) (*command, *refusal) {
		ref.Reason = fmt.Sprintf(format, args...)
		return nil, ref
	}
	top, err := objectMembers(data)
	if err != nil {
		return bad("message: %v", err)
	}
	rawHeader, ok := top["header"]
	if !ok {
		return bad("no header")
	}
	hdr, err := objectMembers(rawHeader)
	if err != nil {
		return bad("header: %v", err)
	}
	// What can be echoed, read leniently first.
	if raw, ok := hdr["name"]; ok {
		var s string
		if json.Unmarshal(raw, &s) == nil && raw[0] == '"' {
			ref.Name = s
		}
	}
	var reqID int64
	reqIDOK := false
	if raw, ok := hdr["requestId"]; ok && intRE.Match(raw) {
		if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
			reqID, reqIDOK = n, true
			ref.RequestID = &n
		}
	}

	for k := range top {
		if k != "header" && k != "payload" {
			return bad("unknown member %.40q", k)
		}
	}
	for k := range hdr {
		switch k {
		case "name", "requestId", "type", "version", "timeout":
		default:
			return bad("header member %.40q not allowed in a command", k)
		}
	}
	if ref.Name == "" || !nameRE.MatchString(ref.Name) {
		return bad("name missing or malformed")
	}
	rawID, ok := hdr["requestId"]
	if !ok || !intRE.Match(rawID) {
		return bad("requestId missing or not an integer")
	}
	var typ string
	if raw, ok := hdr["type"]; !ok || raw[0] != '"' || json.Unmarshal(raw, &typ) != nil {
		return bad("type missing or not a string")
	}
	if typ != TypeCommand {
		return bad("type %.20q is not command", typ)
	}
	var version string
	if raw, ok := hdr["version"]; !ok || raw[0] != '"' || json.Unmarshal(raw, &version) != nil || !versionRE.MatchString(version) {
		return bad("version missing or malformed")
	}
	var timeout int64
	if raw, ok := hdr["timeout"]; ok && string(raw) != "null" {
		if !intRE.Match(raw) {
			return bad("timeout is not an integer")
		}
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil || n < 0 {
			return bad("timeout out of range")
		}
		timeout = n
	}
	payload := top["payload"]
	if len(payload) > 0 && payload[0] != '{' && string(payload) != "null" {
		return bad("payload is neither an object nor null")
	}
	if string(payload) == "null" {
		payload = nil
	}
	if !reqIDOK || reqID <= 0 || reqID > maxRequestID {
		ref.Status = StatusInvalidRequestID
		return bad("requestId out of range")
	}
	return &command{Name: ref.Name, RequestID: reqID, Version: version, Timeout: timeout, Payload: payload}, nil
}

// objectMembers decodes one JSON object (and nothing after it) into its
// members, refusing duplicate member names.
func objectMembers(data []byte) (map[string]json.RawMessage, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	if !json.Valid(data) {
		return nil, errors.New("invalid JSON")
	}
	if err := checkDuplicates(data); err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// checkDuplicates refuses an object with a repeated member name at its top
// level.
func checkDuplicates(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil {
		return err
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		k, _ := t.(string)
		if seen[k] {
			return fmt.Errorf("member %.40q repeated", k)
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return nil
}

// decodePayload decodes a command payload strictly into v (a pointer to a
// struct): member names must match the json tags exactly (encoding/json
// alone matches them case-insensitively), no member may repeat, unknown
// members and wrong JSON types are errors. A nil payload leaves v zero.
func decodePayload(payload json.RawMessage, v any) error {
	if len(payload) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := walkExact(dec, reflect.TypeOf(v)); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the payload")
	}
	dec = json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

var rawMessageType = reflect.TypeOf(json.RawMessage(nil))
var numberType = reflect.TypeOf(json.Number(""))

// walkExact reads one JSON value from dec, checking object member names of
// structs against t's json tags exactly and refusing repeated names.
func walkExact(dec *json.Decoder, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	d, isDelim := tok.(json.Delim)
	if !isDelim {
		return nil // scalar: its type is checked by the decoding that follows
	}
	if t == rawMessageType || t == numberType || t.Kind() == reflect.Interface {
		return skipRest(dec, d)
	}
	switch d {
	case '{':
		var fields map[string]reflect.Type
		switch t.Kind() {
		case reflect.Struct:
			fields = map[string]reflect.Type{}
			for i := 0; i < t.NumField(); i++ {
				f := t.Field(i)
				name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				if name != "" && name != "-" {
					fields[name] = f.Type
				}
			}
		case reflect.Map:
		default:
			return skipRest(dec, d) // type error reported by the decoder
		}
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			k, _ := kt.(string)
			if seen[k] {
				return fmt.Errorf("member %.40q repeated", k)
			}
			seen[k] = true
			var ft reflect.Type
			if fields != nil {
				var ok bool
				if ft, ok = fields[k]; !ok {
					return fmt.Errorf("unknown member %.40q", k)
				}
			} else {
				ft = t.Elem()
			}
			if err := walkExact(dec, ft); err != nil {
				return err
			}
		}
		_, err := dec.Token() // '}'
		return err
	case '[':
		if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
			return skipRest(dec, d)
		}
		for dec.More() {
			if err := walkExact(dec, t.Elem()); err != nil {
				return err
			}
		}
		_, err := dec.Token() // ']'
		return err
	}
	return fmt.Errorf("unexpected %v", d)
}

// skipRest consumes the rest of an object or array whose opening delimiter
// was read.
func skipRest(dec *json.Decoder, open json.Delim) error {
	depth := 1
	for depth > 0 {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				depth++
			default:
				depth--
			}
		}
	}
	_ = open
	return nil
}

// encode marshals a message; payload nil gives "payload":null.
func encode(h Header, payload any) []byte {
	var raw json.RawMessage
	if payload != nil {
		b, err := json.Marshal(payload)
		if err != nil {
			b = []byte("null")
		}
		raw = b
	} else {
		raw = json.RawMessage("null")
	}
	b, _ := json.Marshal(Message{Header: h, Payload: raw})
	return b
}
