package federation

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func newTestTransport(t *testing.T) *netTransport {
	t.Helper()
	nt, err := listenTransport("127.0.0.1", 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nt.Shutdown() })
	return nt
}

func recvPacket(t *testing.T, nt *netTransport) *memberlist.Packet {
	t.Helper()
	select {
	case p := <-nt.PacketCh():
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("no packet within 5 s")
		return nil
	}
}

// Every packet arrives whole, in a buffer of its own size, from the
// sender's address; the largest UDP payload too (a shorter read buffer
// would truncate it without error).
func TestTransportPacketsWhole(t *testing.T) {
	nt := newTestTransport(t)
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: nt.Port()}
	var held []*memberlist.Packet
	for _, size := range []int{1, 300, 1400, 65507} {
		want := bytes.Repeat([]byte{byte(size)}, size)
		if _, err := c.WriteToUDP(want, to); err != nil {
			t.Fatal(err)
		}
		p := recvPacket(t, nt)
		if !bytes.Equal(p.Buf, want) {
			t.Fatalf("%d-byte packet arrived as %d bytes", size, len(p.Buf))
		}
		if cap(p.Buf) > size+64 {
			t.Errorf("%d-byte packet handed on in a %d-byte buffer", size, cap(p.Buf))
		}
		if p.From.String() != c.LocalAddr().String() {
			t.Errorf("From = %s, want %s", p.From, c.LocalAddr())
		}
		if time.Since(p.Timestamp) > 5*time.Second || p.Timestamp.IsZero() {
			t.Errorf("Timestamp %v is not the time of the read", p.Timestamp)
		}
		held = append(held, p)
	}
	// A packet handed on is memberlist's: later reads must not overwrite it.
	for i, size := range []int{1, 300, 1400, 65507} {
		if held[i].Buf[0] != byte(size) || held[i].Buf[len(held[i].Buf)-1] != byte(size) {
			t.Errorf("packet %d was overwritten by a later read", i)
		}
	}
}

// What a received packet costs in memory is about its size, not 64 KiB:
// memberlist's own transport allocated 64 KiB per packet, a sixth of what a
// routing node allocated.
func TestTransportPacketAllocation(t *testing.T) {
	nt := newTestTransport(t)
	c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: nt.Port()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := bytes.Repeat([]byte("g"), 300)
	const n = 200
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < n; i++ {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		recvPacket(t, nt)
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 8<<10 {
		t.Errorf("%d bytes allocated per 300-byte packet received, want under 8 KiB", per)
	}
}

// Shutdown returns even when a packet and a stream wait for a reader that
// is gone, and a second Shutdown is harmless.
func TestTransportShutdownWithPendingHandOver(t *testing.T) {
	nt, err := listenTransport("127.0.0.1", 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	u, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: nt.Port()})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if _, err := u.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	s, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(nt.Port())))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	time.Sleep(100 * time.Millisecond) // both readers now wait on a hand-over
	done := make(chan struct{})
	go func() { nt.Shutdown(); nt.Shutdown(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown hangs on a pending hand-over")
	}
}

// The advertised address is the configured one (IPv4 in its 4-byte form),
// or the bound one when none is configured.
func TestTransportAdvertiseAddr(t *testing.T) {
	nt := newTestTransport(t)
	ip, port, err := nt.FinalAdvertiseAddr("10.1.2.3", 7946)
	if err != nil || !ip.Equal(net.IPv4(10, 1, 2, 3)) || len(ip) != 4 || port != 7946 {
		t.Errorf("configured: %v (%d bytes) %d %v", ip, len(ip), port, err)
	}
	ip, port, err = nt.FinalAdvertiseAddr("", 0)
	if err != nil || !ip.Equal(net.IPv4(127, 0, 0, 1)) || port != nt.Port() {
		t.Errorf("bound: %v %d %v", ip, port, err)
	}
	if _, _, err := nt.FinalAdvertiseAddr("not-an-ip", 1); err == nil {
		t.Error("a host name was accepted as advertise address")
	}
}
