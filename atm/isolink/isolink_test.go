package isolink_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"

	"github.com/cardless-atm/cardless/atm/isolink"
)

// fakeConn answers after its gate opens, or fails; it records the send
// timeout Send gave it and fails the test on a second send.
type fakeConn struct {
	t       *testing.T
	gate    chan struct{}
	answer  *iso8583.Message
	err     error
	calls   int
	timeout time.Duration
}

func (f *fakeConn) Send(m *iso8583.Message, opts ...connection.Option) (*iso8583.Message, error) {
	f.calls++
	if f.calls > 1 {
		f.t.Errorf("Send called %d times", f.calls)
	}
	var o connection.Options
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			f.t.Fatal(err)
		}
	}
	f.timeout = o.SendTimeout
	if f.gate != nil {
		<-f.gate
	}
	return f.answer, f.err
}

func TestSend(t *testing.T) {
	answer := iso8583.NewMessage(iso8583.Spec87)
	t.Run("answer", func(t *testing.T) {
		f := &fakeConn{t: t, answer: answer}
		r, err := isolink.Send(context.Background(), f, answer, 5*time.Second)
		if err != nil || r != answer || f.timeout != 5*time.Second {
			t.Fatalf("got %v, %v, timeout %v", r, err, f.timeout)
		}
	})
	t.Run("ended context: not sent", func(t *testing.T) {
		f := &fakeConn{t: t}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := isolink.Send(ctx, f, answer, 5*time.Second)
		if !errors.Is(err, isolink.ErrNotSent) || !errors.Is(err, context.Canceled) || f.calls != 0 {
			t.Fatalf("err %v, calls %d", err, f.calls)
		}
	})
	t.Run("deadline shortens the send timeout", func(t *testing.T) {
		f := &fakeConn{t: t, answer: answer}
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		if _, err := isolink.Send(ctx, f, answer, 2*time.Hour); err != nil {
			t.Fatal(err)
		}
		if f.timeout > time.Hour || f.timeout < 59*time.Minute {
			t.Fatalf("send timeout %v, want the context's hour", f.timeout)
		}
	})
	t.Run("context ends while waiting", func(t *testing.T) {
		gate := make(chan struct{})
		defer close(gate)
		f := &fakeConn{t: t, gate: gate, answer: answer}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := isolink.Send(ctx, f, answer, time.Hour)
			done <- err
		}()
		cancel()
		err := <-done
		if errors.Is(err, isolink.ErrNotSent) {
			// Send saw the cancel before handing m over: also correct, but
			// then the connection was not called.
			if f.calls != 0 {
				t.Fatalf("not sent, yet Send was called")
			}
			return
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
	})
	t.Run("connection error", func(t *testing.T) {
		f := &fakeConn{t: t, err: connection.ErrSendTimeout}
		_, err := isolink.Send(context.Background(), f, answer, time.Second)
		if !errors.Is(err, connection.ErrSendTimeout) || errors.Is(err, isolink.ErrNotSent) {
			t.Fatalf("err %v", err)
		}
	})
}
