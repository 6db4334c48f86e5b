package config

import (
	"math/rand/v2"
	"os"
	"runtime"
	"testing"
)

func TestAutoListenVectors(t *testing.T) {
	for _, c := range []struct {
		id      uint32
		perUser bool
		want    string
	}{
		{0, true, "127.1.0.0:8421"},
		{1000, true, "127.1.3.232:8421"},
		{65534, true, "127.1.255.254:8421"},
		{autoSpan - 1, true, "127.255.255.254:8421"}, // the last one, below the broadcast address
		{autoSpan, true, "127.1.0.0:8422"},           // the next uid moves to the next port
		{1<<32 - 1, true, "127.2.1.0:8678"},
		{0, false, "127.0.0.1:20000"},
		{501, false, "127.0.0.1:20501"},
		{autoPorts - 1, false, "127.0.0.1:32767"},
		{autoPorts, false, "127.0.0.1:20000"}, // beyond the range: a collision, seen at bind time
	} {
		if got := AutoListen(c.id, c.perUser); got != c.want {
			t.Errorf("AutoListen(%d, %v) = %s, want %s", c.id, c.perUser, got, c.want)
		}
	}
}

// Every uid has an address of its own: no two uids share one, whether
// they are neighbours, a whole span apart, or anywhere in 32 bits.
func TestAutoListenOneToOne(t *testing.T) {
	seen := map[string]uint32{}
	check := func(id uint32) {
		a := AutoListen(id, true)
		if prev, ok := seen[a]; ok && prev != id {
			t.Fatalf("uids %d and %d share %s", prev, id, a)
		}
		seen[a] = id
		if a == "127.0.0.1:8421" || CheckListen(a, false) != nil {
			t.Fatalf("uid %d: %s is not a private loopback address", id, a)
		}
	}
	for id := uint32(0); id < 70000; id++ {
		check(id)
	}
	for k := uint32(0); k < 257; k++ {
		check(k * autoSpan)
		check(k*autoSpan + 1000)
	}
	for range 50000 {
		check(rand.Uint32())
	}
}

func TestListenAutoInConfig(t *testing.T) {
	const prof = "profiles:\n  default:\n    issuer: https://sso.example.com/realms/r\n"
	c, err := Parse("c.yaml", []byte(prof+"proxy:\n  listen: auto\nroutes:\n  - name: a\n    upstream: https://api.example.com\n    listen: 127.0.0.1:0\n"))
	if err != nil {
		t.Fatal(err)
	}
	id := uint32(os.Getuid())
	if runtime.GOOS == "windows" {
		id, _ = userNumber()
	}
	if got, want := c.ProxyListen(), AutoListen(id, runtime.GOOS == "linux"); got != want {
		t.Fatalf("ProxyListen() = %s, want %s", got, want)
	}
	// auto is for the main listener; a route's own listen names an address.
	if _, err := Parse("c.yaml", []byte(prof+"routes:\n  - name: a\n    upstream: https://api.example.com\n    listen: auto\n")); err == nil {
		t.Fatal("a route's listen: auto was accepted")
	}
	// A route can not take the user's auto address either.
	own := AutoListen(id, runtime.GOOS == "linux")
	if _, err := Parse("c.yaml", []byte(prof+"proxy:\n  listen: auto\nroutes:\n  - name: a\n    upstream: https://api.example.com\n    listen: "+own+"\n")); err == nil {
		t.Fatalf("a route on the auto address %s was accepted", own)
	}
}
