package federation

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// maxPacket is the largest UDP payload there is; a read into a smaller
// buffer would truncate a peer's packet silently.
const maxPacket = 65535

// udpRecvBuf is the kernel receive buffer asked for, as memberlist's own
// transport does, so a burst of gossip is not dropped while the reader
// goroutine waits for the CPU.
const udpRecvBuf = 2 << 20

// netTransport is memberlist's packet and stream transport on one TCP and
// one UDP socket sharing a port: memberlist's NetTransport with one change.
// NetTransport reads every UDP packet into a fresh 64 KiB buffer and hands
// that buffer on, so each probe and gossip message of a few hundred bytes
// allocated 64 KiB: on a node that routes calls, a sixth of all it
// allocated, and so of its garbage collections, whose background marking
// holds the CPU for milliseconds. Here one buffer is reused for reading and
// each packet is handed on in a copy of its own size.
type netTransport struct {
	tcp *net.TCPListener
	udp *net.UDPConn
	log *slog.Logger

	packets chan *memberlist.Packet
	streams chan net.Conn

	shutdown atomic.Bool
	stop     chan struct{} // closed by Shutdown: no reader waits on a hand-over after it
	wg       sync.WaitGroup
}

// listenTransport listens on host:port over TCP and UDP (port 0: a free
// port, the same for both) and starts reading.
func listenTransport(host string, port int, log *slog.Logger) (*netTransport, error) {
	ip := net.ParseIP(host)
	if ip == nil {
		return nil, fmt.Errorf("bind address %q is not an IP", host)
	}
	tcp, err := net.ListenTCP("tcp", &net.TCPAddr{IP: ip, Port: port})
	if err != nil {
		return nil, fmt.Errorf("listen TCP: %w", err)
	}
	port = tcp.Addr().(*net.TCPAddr).Port
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: port})
	if err != nil {
		tcp.Close()
		return nil, fmt.Errorf("listen UDP: %w", err)
	}
	for size := udpRecvBuf; size > 0; size /= 2 {
		if err = udp.SetReadBuffer(size); err == nil {
			break
		}
	}
	if err != nil {
		tcp.Close()
		udp.Close()
		return nil, fmt.Errorf("UDP receive buffer: %w", err)
	}
	t := &netTransport{tcp: tcp, udp: udp, log: log, packets: make(chan *memberlist.Packet), streams: make(chan net.Conn), stop: make(chan struct{})}
	t.wg.Add(2)
	go t.acceptStreams()
	go t.readPackets()
	return t, nil
}

var _ memberlist.NodeAwareTransport = (*netTransport)(nil)

// Port is the port both sockets are bound to.
func (t *netTransport) Port() int { return t.tcp.Addr().(*net.TCPAddr).Port }

// FinalAdvertiseAddr returns ip:port when set (Pool always sets them), else
// the bound ones.
func (t *netTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	if ip == "" {
		a := t.tcp.Addr().(*net.TCPAddr)
		if a.IP.IsUnspecified() {
			return nil, 0, errors.New("bound to an unspecified address and no advertise address given")
		}
		return a.IP, a.Port, nil
	}
	adv := net.ParseIP(ip)
	if adv == nil {
		return nil, 0, fmt.Errorf("advertise address %q is not an IP", ip)
	}
	if v4 := adv.To4(); v4 != nil {
		adv = v4
	}
	return adv, port, nil
}

func (t *netTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (t *netTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	ap, err := netip.ParseAddrPort(a.Addr)
	if err != nil {
		// A host name: resolve it as memberlist's transport does.
		ua, rerr := net.ResolveUDPAddr("udp", a.Addr)
		if rerr != nil {
			return time.Time{}, rerr
		}
		ap = ua.AddrPort()
	}
	_, err = t.udp.WriteToUDPAddrPort(b, ap)
	return time.Now(), err
}

func (t *netTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }

func (t *netTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *netTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return (&net.Dialer{Timeout: timeout}).Dial("tcp", a.Addr)
}

func (t *netTransport) StreamCh() <-chan net.Conn { return t.streams }

// Shutdown closes both sockets and waits for the readers to return.
// memberlist calls it after it stopped reading PacketCh and StreamCh.
func (t *netTransport) Shutdown() error {
	if t.shutdown.Swap(true) {
		return nil
	}
	close(t.stop)
	t.tcp.Close()
	t.udp.Close()
	t.wg.Wait()
	return nil
}

// readPackets hands each UDP packet to memberlist in a buffer of its own
// size; the read buffer is reused. The timestamp is taken right after the
// read, as memberlist's transport does: it times probes with it.
func (t *netTransport) readPackets() {
	defer t.wg.Done()
	buf := make([]byte, maxPacket)
	for {
		n, from, err := t.udp.ReadFromUDPAddrPort(buf)
		ts := time.Now()
		if err != nil {
			if t.shutdown.Load() {
				return
			}
			t.log.Error("read gossip packet", "err", err)
			continue
		}
		if n < 1 {
			t.log.Warn("gossip packet too short", "bytes", n, "from", from)
			continue
		}
		p := &memberlist.Packet{Buf: append([]byte(nil), buf[:n]...), From: net.UDPAddrFromAddrPort(from), Timestamp: ts}
		select {
		case t.packets <- p:
		case <-t.stop:
			return
		}
	}
}

// acceptStreams hands each inbound TCP connection to memberlist, backing
// off on accept errors as memberlist's transport does.
func (t *netTransport) acceptStreams() {
	defer t.wg.Done()
	const baseDelay, maxDelay = 5 * time.Millisecond, time.Second
	var delay time.Duration
	for {
		c, err := t.tcp.AcceptTCP()
		if err != nil {
			if t.shutdown.Load() {
				return
			}
			delay = min(max(2*delay, baseDelay), maxDelay)
			t.log.Error("accept gossip stream", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		select {
		case t.streams <- c:
		case <-t.stop:
			c.Close()
			return
		}
	}
}
