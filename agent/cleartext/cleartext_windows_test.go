package cleartext

import (
	"context"
	"net"
	"testing"
)

// With the unsafe_cleartext_* opt-in, a loopback listener whose owner
// Windows can't name (Wine 8 names none it did not create: the test
// Keycloak, say) is let through; the user's own always is.
func TestOptInLetsAnUnknownOwnerThrough(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	c, err := Dial((&net.Dialer{}).DialContext, true)(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("with the opt-in: %v", err)
	}
	c.Close()
}
