package driver

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// A sandbox URL whose host name does not resolve fails the wait at once,
// saying so, instead of at the end of the start timeout with "context
// deadline exceeded". The resolver is a local one answering NXDOMAIN.
func TestWaitAliveNameDoesNotResolve(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 12 {
				continue
			}
			// The question back, as an answer: QR, RD, RA, NXDOMAIN.
			resp := append([]byte(nil), buf[:n]...)
			resp[2] = 0x81
			resp[3] = 0x83
			_, _ = pc.WriteTo(resp, from)
		}
	}()
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
	hc := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{Resolver: r}).DialContext}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t0 := time.Now()
	err = WaitAlive(ctx, hc, "http://rt-0123.sbx.test:8000", nil)
	if err == nil || !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "rt-0123.sbx.test does not resolve") {
		t.Fatalf("WaitAlive: %v", err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("took %v to say so", d)
	}
}
