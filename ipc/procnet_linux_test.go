package ipc

import (
	"net"
	"os"
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

func TestTCPListenerUID(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	uid, err := TCPListenerUID(addr)
	if err != nil || uid != os.Getuid() {
		t.Fatalf("listener uid = %d, %v; want %d", uid, err, os.Getuid())
	}
	ln.Close()
	if _, err := TCPListenerUID(addr); err == nil {
		t.Fatal("a closed listener was found")
	}
}
