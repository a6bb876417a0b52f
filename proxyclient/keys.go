package proxyclient

import (
	"errors"
	"fmt"
	"github.com/cardless-atm/cardless/hsm/tr31"
	"io"

	"github.com/moov-io/iso8583"

	"github.com/cardless-atm/cardless/atm/keepalive"
	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/hsm"
)

// errPending marks a key request whose answer has not arrived yet.
var errPending = errors.New("proxyclient: key answer pending")

// linkCodec is wire.Codec plus the key exchange, done on the read
// goroutine: a key block is installed before the next message is read, so
// every message the proxy sealed after it is opened with the new keys.
type linkCodec struct {
	wire.Codec
	c    *Client
	idle *keepalive.Idle // the connection's writes, for the echo
}

// WriteMessage implements connection.MessageWriter: it writes m and notes
// the write for the echo.
func (lc *linkCodec) WriteMessage(w io.Writer, m *iso8583.Message) error {
	err := lc.Codec.WriteMessage(w, m)
	if err == nil {
		lc.idle.Wrote()
	}
	return err
}

// ReadMessage implements connection.MessageReader.
func (lc *linkCodec) ReadMessage(r io.Reader) (*iso8583.Message, error) {
	m, err := lc.Codec.ReadMessage(r)
	if err != nil || m == nil {
		return m, err
	}
	lc.c.afterRead(lc.Protector, m)
	return m, nil
}

// field returns field id of m, or "" if it is absent or unreadable.
func field(m *iso8583.Message, id int) string {
	s, _ := m.GetString(id)
	return s
}

// afterRead runs on the read goroutine for every verified message.
func (c *Client) afterRead(prot *wire.Protector, m *iso8583.Message) {
	mti, stan := wire.MTI(m), wire.STAN(m)
	code := field(m, wire.FieldNetMgmtCode)
	switch {
	case mti == wire.MTINetMgmtResponse && (code == wire.NetSignOn || code == wire.NetKeyRequest):
		c.mu.Lock()
		pending := c.kxResp[stan] == errPending
		c.mu.Unlock()
		if !pending {
			c.log.Warn("key block in an unexpected 0810 ignored", "stan", stan)
			return
		}
		if field(m, wire.FieldResponseCode) != wire.RCApproved {
			c.setKX(c.kxResp, stan, nil, false)
			return
		}
		// The proxy switched to these keys when it wrote this answer, so
		// the previous keys are dropped at once.
		err := c.installKeys(prot, field(m, wire.FieldAdditionalData), false)
		c.setKX(c.kxResp, stan, err, true)
	case mti == wire.MTINetMgmtRequest && code == wire.NetKeyChange:
		// The network-management MAC key never changes, so a recorded 162
		// would verify forever: refuse one that is stale or seen before,
		// or an attacker could put old working keys back.
		if err := c.freshKeyChange(stan, field(m, wire.FieldTransmissionDT)); err != nil {
			c.log.Warn("key change refused", "stan", stan, "reason", err)
			c.setKX(c.kxPush, stan, err, true)
			return
		}
		// A new push implies the proxy confirmed and uses the staged keys
		// (it pushes only after the ack of the previous one).
		c.confirm(prot)
		err := c.installKeys(prot, field(m, wire.FieldAdditionalData), true)
		c.setKX(c.kxPush, stan, err, true)
	case mti != "" && mti[:2] != "08":
		c.mu.Lock()
		cur, staged := c.cur, c.prev != nil
		c.mu.Unlock()
		if staged && cur != nil && field(m, wire.FieldMACKeyKCV) == cur.takKCV {
			c.confirm(prot)
		}
	}
}

func (c *Client) setKX(m map[string]error, stan string, err error, installed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if installed {
		m[stan] = err
	} else {
		delete(m, stan)
	}
}

// installKeys imports the key block into fresh slots (the HSM checks the
// KCVs) and makes them current. With keepPrevious (a 162 push) the old keys
// stay accepted inbound until confirmed; otherwise they are dropped and
// their slots deleted. On any error nothing changes.
func (c *Client) installKeys(prot *wire.Protector, block string, keepPrevious bool) error {
	if got, want := wire.KeyFormatOf(block), c.cfg.KeyFormat; got != want {
		err := fmt.Errorf("%w: %w: the proxy sent working keys in the %q format; this terminal takes %q only (proxy.keyBlocks)", ErrKeyExchange, errKeyFormat, got, want)
		c.log.Warn("key block refused", "reason", err)
		return err
	}
	n := c.gen.Add(1)
	g := &keyGen{tak: hsm.KeyName(fmt.Sprintf("tak.%d", n)), tek: hsm.KeyName(fmt.Sprintf("tek.%d", n))}
	var err error
	if c.cfg.KeyFormat == wire.KeyFormatTR31 {
		err = c.importTR31(g, block)
	} else {
		err = c.importLegacy(g, block)
	}
	if err != nil {
		c.log.Warn("working keys refused; keeping the keys in use", "reason", err)
		return fmt.Errorf("%w: %w", ErrKeyExchange, err)
	}
	prot.SetKeys(wire.KeySet{NetMgmtMAC: NetMgmtKey, MAC: g.tak, Data: g.tek})

	c.mu.Lock()
	var drop []*keyGen
	if c.prev != nil {
		drop = append(drop, c.prev)
		c.prev = nil
	}
	if keepPrevious && prot == c.prot {
		c.prev = c.cur
	} else if c.cur != nil {
		drop = append(drop, c.cur)
	}
	c.cur = g
	c.st.KeyKCVs = KeyKCVs{TAK: g.takKCV, TEK: g.tekKCV}
	c.mu.Unlock()
	if !keepPrevious {
		prot.DropPrevious()
	}
	c.deleteKeys(drop...)
	c.log.Info("working keys installed", "tak_kcv", g.takKCV, "tek_kcv", g.tekKCV, "previous_kept", keepPrevious)
	return nil
}

// confirm drops the previous key set once the proxy is known to use the
// current one.
func (c *Client) confirm(prot *wire.Protector) {
	c.mu.Lock()
	old := c.prev
	c.prev = nil
	c.mu.Unlock()
	if old == nil {
		return
	}
	prot.DropPrevious()
	c.deleteKeys(old)
	c.log.Info("new working keys confirmed; previous keys deleted")
}

func (c *Client) deleteKeys(gs ...*keyGen) {
	for _, g := range gs {
		for _, n := range []hsm.KeyName{g.tak, g.tek} {
			if err := c.cfg.HSM.DeleteKey(n); err != nil {
				c.log.Warn("deleting an old key slot failed", "slot", string(n), "err", err)
			}
		}
	}
}

// errReplayedKeyChange: a key change push outside the duplicate window or
// with a STAN already seen in it.
var errReplayedKeyChange = errors.New("proxyclient: replayed or stale key change")

// freshKeyChange accepts a 162 only once per STAN within the duplicate
// window and only with a transmission time inside it.
func (c *Client) freshKeyChange(stan, dt string) error {
	now := c.cfg.Clock.Now()
	if dt == "" || stale(dt, now, c.cfg.DuplicateWindow) {
		return fmt.Errorf("%w: transmission time %q outside %s of now", errReplayedKeyChange, dt, c.cfg.DuplicateWindow)
	}
	if c.kxSeen.add(stan, now, c.cfg.DuplicateWindow, false) {
		return fmt.Errorf("%w: STAN %s seen before", errReplayedKeyChange, stan)
	}
	return nil
}

// importLegacy imports keys 3DES-ECB under the TMK, checked by their KCVs.
func (c *Client) importLegacy(g *keyGen, block string) error {
	kb, err := wire.ParseKeyBlock(block)
	if err != nil {
		return err
	}
	hm := c.cfg.HSM
	if err := hm.ImportKey(hsm.TMK, g.tak, kb.TAK, kb.TAKKCV); err != nil {
		return fmt.Errorf("TAK: %w", err)
	}
	if err := hm.ImportKey(hsm.TMK, g.tek, kb.TEK, kb.TEKKCV); err != nil {
		_ = hm.DeleteKey(g.tak)
		return fmt.Errorf("TEK: %w", err)
	}
	g.takKCV, g.tekKCV = kb.TAKKCV, kb.TEKKCV
	return nil
}

// importTR31 imports TR-31 key blocks under the key block protection key;
// each block must give its key the usage of its slot (a MAC key that
// generates and verifies, a data key that encrypts and decrypts), and the
// module enforces that usage from then on.
func (c *Client) importTR31(g *keyGen, block string) error {
	kb, err := wire.ParseTR31Keys(block)
	if err != nil {
		return err
	}
	imp := c.cfg.HSM.(hsm.KeyBlockImporter) // checked by New
	for _, k := range []struct {
		name, slot hsm.KeyName
		block      string
		want       tr31.Header
		kcv        *string
	}{{"TAK", g.tak, kb.TAK, wire.TAKHeader, &g.takKCV}, {"TEK", g.tek, kb.TEK, wire.TEKHeader, &g.tekKCV}} {
		h, kcv, err := imp.ImportKeyBlock(KBPKKey, k.slot, k.block)
		if err == nil && !wire.SameUse(h, k.want) {
			err = fmt.Errorf("%w: the block gives usage %s, algorithm %c, mode %c; the %s must be %s, %c, %c", hsm.ErrKeyUsage,
				h.KeyUsage, h.Algorithm, h.ModeOfUse, k.name, k.want.KeyUsage, k.want.Algorithm, k.want.ModeOfUse)
		}
		if err != nil {
			_ = c.cfg.HSM.DeleteKey(g.tak)
			_ = c.cfg.HSM.DeleteKey(g.tek)
			return fmt.Errorf("%s: %w", k.name, err)
		}
		*k.kcv = kcv
	}
	return nil
}

// errKeyFormat: working keys in the format this terminal does not take.
var errKeyFormat = errors.New("wrong key format")
