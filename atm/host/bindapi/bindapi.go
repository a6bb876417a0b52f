// Package bindapi is the contract of phone binding between a bank's phone
// app and its bank (docs/binding.md): the two JSON requests that bind a
// phone's device ID to a customer with a one-time verification code sent
// by SMS, the bank's answers, and the simulator's SMS inbox. The bank host
// simulator (atm/hostlink/hostsim) serves it, the phone simulator
// (proxyclient/phonesim) calls it; both use the strict parsers here, so
// the two sides read the same bytes the same way.
//
// A withdrawal then carries the device ID in field 123 (atm/wire), and the
// host declines one from a phone not bound to the customer with 57
// (wire.RCPhoneNotBound).
package bindapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cardless-atm/cardless/atm/wire"
)

// Paths of the bind endpoint.
const (
	PathStart   = "/bind/start"
	PathConfirm = "/bind/confirm"
	// PathSimSMS is the simulator's SMS inbox (GET ?to=CUSTOMER): where
	// the host simulator "delivers" its text messages, the stand-in for
	// the customer's phone receiving an SMS. A real bank has no such
	// path; its SMS gateway sends to the number it has on file.
	PathSimSMS = "/sim/sms"
)

// MaxBody bounds every request and answer body.
const MaxBody = 4096

// MaxInboxBody bounds the body of the simulated SMS inbox.
const MaxInboxBody = 64 << 10

// CodeLength is the number of digits of a verification code.
const CodeLength = 6

// MaxCustomerLen bounds a customer ID.
const MaxCustomerLen = 64

// Results (Answer.Result): what the bank did with a request.
const (
	CodeSent     = "code_sent"      // start: a code is on its way by SMS
	AlreadyBound = "already_bound"  // start: this phone is already bound to the customer; nothing sent
	Refused      = "refused"        // start: the customer or PIN was not accepted (ResponseCode says why)
	TooManyCodes = "too_many_codes" // start: the customer has had the day's codes; try tomorrow
	Bound        = "bound"          // confirm: the phone is bound (also to a repeated confirm)
	WrongCode    = "wrong_code"     // confirm: not the code sent; TriesLeft more
	TooManyTries = "too_many_tries" // confirm: the code is void after too many wrong tries; start again
	CodeExpired  = "code_expired"   // confirm: the code has expired; start again
	NoCode       = "no_code"        // confirm: no code was sent for this customer and phone; start first
	BadRequest   = "bad_request"    // either: the request is malformed (Error says how)
	Failed       = "error"          // either: the bank could not do it (nothing changed); try again later
)

// ResultText is the meaning of a result in plain words, for people reading
// a tool's output ("" for an unknown result).
func ResultText(result string) string { return resultTexts[result] }

var resultTexts = map[string]string{
	CodeSent:     "a verification code was sent to the customer by SMS",
	AlreadyBound: "this phone is already bound to the customer",
	Refused:      "the customer or the PIN was not accepted",
	TooManyCodes: "too many codes were sent to the customer today; try again tomorrow",
	Bound:        "the phone is bound to the customer",
	WrongCode:    "wrong code",
	TooManyTries: "too many wrong codes: this code is void; ask for a new one",
	CodeExpired:  "the code has expired; ask for a new one",
	NoCode:       "no code was sent for this customer and phone; ask for one first",
	BadRequest:   "the request is malformed",
	Failed:       "the bank could not do it; nothing changed; try again later",
}

// StartRequest is the body of POST /bind/start.
type StartRequest struct {
	Customer string `json:"customer"` // the customer ID the bank knows (field 120 of a withdrawal)
	Device   string `json:"device"`   // the phone's device ID (wire.DeviceIDLength upper-case hex digits)
	PINBlock string `json:"pinBlock"` // the customer's PIN as in field 52: a format 1 block under the app PIN key, 16 upper-case hex digits
}

// ConfirmRequest is the body of POST /bind/confirm.
type ConfirmRequest struct {
	Customer string `json:"customer"`
	Device   string `json:"device"`
	Code     string `json:"code"` // the CodeLength digits the customer received by SMS
}

// Answer is the bank's answer to either request.
type Answer struct {
	Result string `json:"result"`
	// ResponseCode, with Refused: 14 unknown customer, 05 blocked, 55
	// wrong PIN, 75 PIN tries exceeded (the codes of a withdrawal,
	// protocol.md §6).
	ResponseCode string `json:"responseCode,omitempty"`
	// Meaning is the result (with Refused, the response code) in plain
	// words, for the app to show.
	Meaning string `json:"meaning,omitempty"`
	// SentTo (CodeSent) is the masked number the code went to.
	SentTo string `json:"sentTo,omitempty"`
	// ExpiresAt (CodeSent) is when the code stops being valid.
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	// TriesLeft (CodeSent, WrongCode) is how many wrong codes are left
	// before the code is void.
	TriesLeft int `json:"triesLeft,omitempty"`
	// Error (BadRequest, Failed) says what was wrong, in plain words.
	Error string `json:"error,omitempty"`
}

// OK reports whether the answer leaves the phone bound or a code on its
// way: the results a client goes on from.
func (a Answer) OK() bool {
	switch a.Result {
	case CodeSent, AlreadyBound, Bound:
		return true
	}
	return false
}

// SMS is one text message in the simulator's inbox.
type SMS struct {
	To     string    `json:"to"`
	SentAt time.Time `json:"sentAt"`
	Text   string    `json:"text"`
}

// Inbox is the answer of GET /sim/sms: the messages sent to one number,
// oldest first.
type Inbox struct {
	To       string `json:"to"`
	Messages []SMS  `json:"messages"`
}

// ErrFormat: a body that is not a well-formed request or answer.
var ErrFormat = errors.New("bindapi: malformed body")

// decode reads exactly one JSON object of v's type from b: unknown
// fields, trailing data and bodies over max bytes are refused.
func decode(b []byte, v any, max int) error {
	if len(b) > max {
		return fmt.Errorf("%w: more than %d bytes", ErrFormat, max)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", ErrFormat, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the JSON object", ErrFormat)
	}
	return nil
}

// ParseStart reads and checks a StartRequest.
func ParseStart(b []byte) (StartRequest, error) {
	var r StartRequest
	if err := decode(b, &r, MaxBody); err != nil {
		return StartRequest{}, err
	}
	var errs []error
	if err := CheckCustomer(r.Customer); err != nil {
		errs = append(errs, err)
	}
	if !wire.ValidDeviceID(r.Device) {
		errs = append(errs, fmt.Errorf("%w: device must be %d upper-case hex digits", ErrFormat, wire.DeviceIDLength))
	}
	if len(r.PINBlock) != 16 || !upperHex(r.PINBlock) {
		errs = append(errs, fmt.Errorf("%w: pinBlock must be 16 upper-case hex digits", ErrFormat))
	}
	if err := errors.Join(errs...); err != nil {
		return StartRequest{}, err
	}
	return r, nil
}

// ParseConfirm reads and checks a ConfirmRequest.
func ParseConfirm(b []byte) (ConfirmRequest, error) {
	var r ConfirmRequest
	if err := decode(b, &r, MaxBody); err != nil {
		return ConfirmRequest{}, err
	}
	var errs []error
	if err := CheckCustomer(r.Customer); err != nil {
		errs = append(errs, err)
	}
	if !wire.ValidDeviceID(r.Device) {
		errs = append(errs, fmt.Errorf("%w: device must be %d upper-case hex digits", ErrFormat, wire.DeviceIDLength))
	}
	if !ValidCode(r.Code) {
		errs = append(errs, fmt.Errorf("%w: code must be %d digits", ErrFormat, CodeLength))
	}
	if err := errors.Join(errs...); err != nil {
		return ConfirmRequest{}, err
	}
	return r, nil
}

// ParseAnswer reads an Answer; a Result this package does not define is
// refused.
func ParseAnswer(b []byte) (Answer, error) {
	var a Answer
	if err := decode(b, &a, MaxBody); err != nil {
		return Answer{}, err
	}
	switch a.Result {
	case CodeSent, AlreadyBound, Refused, TooManyCodes, Bound, WrongCode, TooManyTries, CodeExpired, NoCode, BadRequest, Failed:
	default:
		return Answer{}, fmt.Errorf("%w: unknown result %q", ErrFormat, a.Result)
	}
	if a.TriesLeft < 0 {
		return Answer{}, fmt.Errorf("%w: negative triesLeft", ErrFormat)
	}
	return a, nil
}

// ParseInbox reads an Inbox.
func ParseInbox(b []byte) (Inbox, error) {
	var in Inbox
	if err := decode(b, &in, MaxInboxBody); err != nil {
		return Inbox{}, err
	}
	return in, nil
}

// CheckCustomer checks the form of a customer ID: 1 to MaxCustomerLen
// printable ASCII characters.
func CheckCustomer(id string) error {
	if id == "" || len(id) > MaxCustomerLen {
		return fmt.Errorf("%w: customer must be 1-%d characters", ErrFormat, MaxCustomerLen)
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7E {
			return fmt.Errorf("%w: customer must be printable ASCII without spaces", ErrFormat)
		}
	}
	return nil
}

// ValidCode reports whether s has the form of a verification code:
// exactly CodeLength ASCII digits.
func ValidCode(s string) bool { return len(s) == CodeLength && wire.IsDigits(s) }

// CodeIn returns the verification code in the text of an SMS: its one run
// of exactly CodeLength digits (a phone's SMS reader does the same).
func CodeIn(text string) (string, error) {
	var found []string
	for i := 0; i < len(text); {
		j := i
		for j < len(text) && text[j] >= '0' && text[j] <= '9' {
			j++
		}
		if j-i == CodeLength {
			found = append(found, text[i:j])
		}
		if j == i {
			j++
		}
		i = j
	}
	if len(found) != 1 {
		return "", fmt.Errorf("%w: the message holds %d codes of %d digits, want one", ErrFormat, len(found), CodeLength)
	}
	return found[0], nil
}

// MessageText is the text of the SMS that carries code, valid for ttl.
func MessageText(code string, ttl time.Duration) string {
	in := fmt.Sprintf("%d seconds", int(ttl.Round(time.Second)/time.Second))
	if ttl%time.Minute == 0 {
		in = fmt.Sprintf("%d minutes", int(ttl/time.Minute))
	}
	return fmt.Sprintf("[Cardless Bank] %s is your code to bind a new phone to your account for cardless withdrawals. "+
		"It expires in %s. Never tell it to anyone, not even the bank.", code, in)
}

func upperHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}
