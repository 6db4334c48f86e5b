package proxy

import (
	"net"
	"testing"
)

func TestProcAddr(t *testing.T) {
	got, ok := procAddr(&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 8080}, false)
	if !ok || got != "0100007F:1F90" {
		t.Fatalf("got %s", got)
	}
	got, ok = procAddr(&net.TCPAddr{IP: net.ParseIP("::1"), Port: 443}, true)
	if !ok || got != "00000000000000000000000001000000:01BB" {
		t.Fatalf("got %s", got)
	}
}
