package dispensersim

// Hooks for a protocol front end (the XFS4IoT simulator in
// atm/dispenser/xfs4iot/xfs4iotsim) that wraps a Sim.

// ClearCommandNonce clears the current command nonce
// (Common.ClearCommandNonce) and reports whether there was one. A token
// issued for it is refused with ErrNoCommandNonce afterwards.
func (s *Sim) ClearCommandNonce() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	had := s.nonce != ""
	s.nonce = ""
	return had
}

// HasCommandNonce reports whether a command nonce is current (issued and
// not yet used or cleared).
func (s *Sim) HasCommandNonce() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nonce != ""
}

// LastDispenseID returns the HMACSHA256 value (64 upper-case hex digits) of
// the end-to-end token that authorised the last dispense, the DISPENSEID of
// an XFS4IoT present-status token, or "" if there was no dispense yet. It
// is saved with the present status and survives restarts.
func (s *Sim) LastDispenseID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.DispenseID
}
