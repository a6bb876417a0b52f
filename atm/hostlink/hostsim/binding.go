package hostsim

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"math/big"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cardless-atm/cardless/atm/host/bindapi"
	"github.com/cardless-atm/cardless/atm/wire"
)

// Phone binding (docs/binding.md): a customer binds a phone (its device
// ID, field 123 of a withdrawal) with their PIN and a one-time code sent
// to them by SMS; a withdrawal from a phone not bound to its customer is
// declined 57 unless Binding.Optional. The host keeps neither device IDs
// nor codes in clear: a binding is keyed by the customer and a hash of
// the device ID, a pending code is a salted hash.

// bindingRecord is a phone bound to a customer.
type bindingRecord struct {
	Customer string    `json:"customer"`
	BoundAt  time.Time `json:"boundAt"`
}

// pendingCode is a verification code sent and not yet used.
type pendingCode struct {
	Salt    []byte    `json:"salt"`
	Hash    []byte    `json:"hash"`
	SentAt  time.Time `json:"sentAt"`
	Expires time.Time `json:"expires"`
	Wrong   int       `json:"wrong"` // wrong codes tried against it
	Void    bool      `json:"void"`  // voided by too many wrong codes
}

// maxInbox is how many messages the simulated SMS inbox keeps per number.
const maxInbox = 10

// deviceRef is the hash of a device ID the host keeps and logs instead of
// the ID itself (which a phone presents as a credential).
func deviceRef(device string) string {
	h := sha256.Sum256([]byte("cardless device\x00" + device))
	return hex.EncodeToString(h[:])
}

// bindKey is the key of a binding and of a pending code: the customer ID
// and the device's hash (fixed length, so the key is unambiguous whatever
// the customer ID holds).
func bindKey(customer, device string) []byte { return []byte(customer + "/" + deviceRef(device)) }

func hashCode(salt []byte, code string) []byte {
	h := sha256.New()
	h.Write(salt)
	h.Write([]byte(code))
	return h.Sum(nil)
}

// seedBindings binds the configured phones when the bindings bucket is
// new.
func seedBindings(tx *bolt.Tx, devices []BoundDevice, now time.Time) error {
	if tx.Bucket(bucketBindings) != nil {
		return nil
	}
	b, err := tx.CreateBucket(bucketBindings)
	if err != nil {
		return err
	}
	for _, d := range devices {
		if err := putJSON(b, bindKey(d.Customer, d.Device), &bindingRecord{Customer: d.Customer, BoundAt: now}); err != nil {
			return err
		}
	}
	return nil
}

func isBound(tx *bolt.Tx, customer, device string) bool {
	return device != "" && tx.Bucket(bucketBindings).Get(bindKey(customer, device)) != nil
}

// checkBinding is decide's binding check: RCPhoneNotBound when binding is
// required and device (field 123, "" when absent) is not bound to
// customer, else "".
func (s *Server) checkBinding(tx *bolt.Tx, customer, device string) string {
	if s.binding.Optional || isBound(tx, customer, device) {
		return ""
	}
	return wire.RCPhoneNotBound
}

// Bound reports whether device is bound to customer.
func (s *Server) Bound(customer, device string) (bool, error) {
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		ok = isBound(tx, customer, device)
		return nil
	})
	return ok, err
}

// checkPIN checks the PIN block against the account (75 once the tries
// are used up, 55 for a wrong PIN, counting it) and returns "" when it
// matches (the wrong-PIN count is then reset in a, which the caller
// stores).
func (s *Server) checkPIN(customers *bolt.Bucket, a *account, pinBlock []byte) (string, error) {
	if a.BadPINs >= maxPINTries {
		return RCPINTriesExceeded, nil
	}
	if !s.pinOK(a, pinBlock) {
		a.BadPINs++
		code := wire.RCIncorrectPIN
		if a.BadPINs >= maxPINTries {
			code = RCPINTriesExceeded
		}
		return code, putJSON(customers, []byte(a.ID), a)
	}
	a.BadPINs = 0
	return "", nil
}

func refused(rc string) bindapi.Answer {
	return bindapi.Answer{Result: bindapi.Refused, ResponseCode: rc, Meaning: wire.ResponseText(rc)}
}

func badBind(err error) bindapi.Answer {
	return withMeaning(bindapi.Answer{Result: bindapi.BadRequest, Error: err.Error()})
}

// BindStart is the first step of binding the phone device to customer:
// it checks the customer (14 unknown, 05 blocked) and their PIN (pinBlock
// as in field 52: 55 wrong, 75 tries exceeded, counted with the
// withdrawals' wrong PINs), and then sends a new six-digit code from
// crypto/rand by SMS (to the simulated inbox), valid for Binding.CodeTTL
// and Binding.MaxTries wrong tries; it replaces any code sent before for
// this customer and phone. A phone already bound gets AlreadyBound and no
// code; a customer who has had Binding.MaxCodesPerDay codes today gets
// TooManyCodes. An error (with a Failed answer) means nothing changed.
// Every answer carries its Meaning.
func (s *Server) BindStart(customer, device string, pinBlock []byte) (bindapi.Answer, error) {
	a, err := s.bindStart(customer, device, pinBlock)
	return withMeaning(a), err
}

// withMeaning sets a's Meaning from its result when it has none.
func withMeaning(a bindapi.Answer) bindapi.Answer {
	if a.Meaning == "" {
		a.Meaning = bindapi.ResultText(a.Result)
	}
	return a
}

func (s *Server) bindStart(customer, device string, pinBlock []byte) (bindapi.Answer, error) {
	if err := bindapi.CheckCustomer(customer); err != nil {
		return badBind(err), nil
	}
	if !wire.ValidDeviceID(device) {
		return badBind(fmt.Errorf("device must be %d upper-case hex digits", wire.DeviceIDLength)), nil
	}
	now := s.now()
	log := s.log.With("customer", maskID(customer), "device", deviceRef(device)[:12])
	var ans bindapi.Answer
	var code string
	err := s.db.Update(func(tx *bolt.Tx) error {
		customers := tx.Bucket(bucketCustomers)
		var a account
		found, err := getJSON(customers, []byte(customer), &a)
		switch {
		case err != nil:
			return err
		case !found:
			ans = refused(wire.RCInvalidAccount)
			return nil
		case a.Blocked:
			ans = refused(wire.RCDoNotHonour)
			return nil
		}
		rc, err := s.checkPIN(customers, &a, pinBlock)
		if err != nil || rc != "" {
			ans = refused(rc)
			return err // the wrong PIN is counted
		}
		if err := putJSON(customers, []byte(a.ID), &a); err != nil {
			return err
		}
		if isBound(tx, customer, device) {
			ans = bindapi.Answer{Result: bindapi.AlreadyBound}
			return nil
		}
		sentKey := dayKey(customer, s.day(now))
		var sent int
		if _, err := getJSON(tx.Bucket(bucketBindSent), sentKey, &sent); err != nil {
			return err
		}
		if sent >= s.binding.MaxCodesPerDay {
			ans = bindapi.Answer{Result: bindapi.TooManyCodes, Error: fmt.Sprintf("%d codes were sent today; try again tomorrow", sent)}
			return nil
		}
		n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
		if err != nil {
			return err
		}
		salt := make([]byte, 16)
		if _, err := rand.Read(salt); err != nil {
			return err
		}
		code = fmt.Sprintf("%0*d", bindapi.CodeLength, n.Int64())
		expires := now.Add(s.binding.CodeTTL)
		p := pendingCode{Salt: salt, Hash: hashCode(salt, code), SentAt: now, Expires: expires}
		if err := putJSON(tx.Bucket(bucketBindCodes), bindKey(customer, device), &p); err != nil {
			return err
		}
		if err := putJSON(tx.Bucket(bucketBindSent), sentKey, sent+1); err != nil {
			return err
		}
		ans = bindapi.Answer{Result: bindapi.CodeSent, SentTo: maskID(customer), ExpiresAt: &expires, TriesLeft: s.binding.MaxTries}
		return nil
	})
	if err != nil {
		log.Error("bind start failed", "err", err)
		return bindapi.Answer{Result: bindapi.Failed, Error: "the bank could not send a code; try again later"}, err
	}
	if code != "" {
		s.sendSMS(customer, bindapi.MessageText(code, s.binding.CodeTTL), now)
		log.Info("bind: verification code sent by simulated SMS (read it at "+bindapi.PathSimSMS+")", "expires", ans.ExpiresAt.UTC())
	} else {
		log.Info("bind: start answered", "result", ans.Result, "rc", ans.ResponseCode)
	}
	return ans, nil
}

// BindConfirm is the second step: code must be the one sent for this
// customer and phone, unexpired, and not void. A right code binds the
// phone (Bound, also to a repeat once bound); a wrong one counts, and the
// Binding.MaxTries-th voids the code (TooManyTries); an expired one is
// CodeExpired; with no code sent, NoCode. An error (with a Failed answer)
// means nothing changed. Every answer carries its Meaning.
func (s *Server) BindConfirm(customer, device, code string) (bindapi.Answer, error) {
	a, err := s.bindConfirm(customer, device, code)
	return withMeaning(a), err
}

func (s *Server) bindConfirm(customer, device, code string) (bindapi.Answer, error) {
	if err := bindapi.CheckCustomer(customer); err != nil {
		return badBind(err), nil
	}
	if !wire.ValidDeviceID(device) {
		return badBind(fmt.Errorf("device must be %d upper-case hex digits", wire.DeviceIDLength)), nil
	}
	if !bindapi.ValidCode(code) {
		return badBind(fmt.Errorf("code must be %d digits", bindapi.CodeLength)), nil
	}
	now := s.now()
	log := s.log.With("customer", maskID(customer), "device", deviceRef(device)[:12])
	key := bindKey(customer, device)
	var ans bindapi.Answer
	err := s.db.Update(func(tx *bolt.Tx) error {
		codes := tx.Bucket(bucketBindCodes)
		if isBound(tx, customer, device) {
			ans = bindapi.Answer{Result: bindapi.Bound}
			return codes.Delete(key)
		}
		var p pendingCode
		found, err := getJSON(codes, key, &p)
		switch {
		case err != nil:
			return err
		case !found:
			ans = bindapi.Answer{Result: bindapi.NoCode}
			return nil
		case p.Void:
			ans = bindapi.Answer{Result: bindapi.TooManyTries}
			return nil
		case !now.Before(p.Expires):
			ans = bindapi.Answer{Result: bindapi.CodeExpired}
			return nil
		}
		if subtle.ConstantTimeCompare(hashCode(p.Salt, code), p.Hash) == 1 {
			ans = bindapi.Answer{Result: bindapi.Bound}
			if err := putJSON(tx.Bucket(bucketBindings), key, &bindingRecord{Customer: customer, BoundAt: now}); err != nil {
				return err
			}
			return codes.Delete(key)
		}
		p.Wrong++
		if p.Wrong >= s.binding.MaxTries {
			p.Void = true
			ans = bindapi.Answer{Result: bindapi.TooManyTries}
		} else {
			ans = bindapi.Answer{Result: bindapi.WrongCode, TriesLeft: s.binding.MaxTries - p.Wrong}
		}
		return putJSON(codes, key, &p)
	})
	if err != nil {
		log.Error("bind confirm failed", "err", err)
		return bindapi.Answer{Result: bindapi.Failed, Error: "the bank could not check the code; try again later"}, err
	}
	if ans.Result == bindapi.Bound {
		log.Info("bind: phone bound to the customer")
	} else {
		log.Warn("bind: code not accepted", "result", ans.Result, "tries_left", ans.TriesLeft)
	}
	return ans, nil
}

// sendSMS is the simulator's SMS gateway: it puts the message in the
// simulated inbox of the number to (the customer ID; for the demo
// customers, their mobile number). This is the one place a code exists in
// clear outside the request that checks it.
func (s *Server) sendSMS(to, text string, now time.Time) {
	s.smsMu.Lock()
	defer s.smsMu.Unlock()
	if s.sms == nil {
		s.sms = map[string][]bindapi.SMS{}
	}
	in := append(s.sms[to], bindapi.SMS{To: to, SentAt: now.UTC(), Text: text})
	if len(in) > maxInbox {
		in = slices.Clone(in[len(in)-maxInbox:])
	}
	s.sms[to] = in
}

// SMS returns the simulated SMS inbox of the number to, oldest first
// (SIMULATOR ONLY: the stand-in for the customer's phone). The inbox is in
// memory: a restart empties it, while codes already sent stay valid.
func (s *Server) SMS(to string) []bindapi.SMS {
	s.smsMu.Lock()
	defer s.smsMu.Unlock()
	return slices.Clone(s.sms[to])
}
