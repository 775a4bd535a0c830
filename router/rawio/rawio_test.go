package rawio

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/vaxel/vaxel/pki"
)

// pair returns both ends of one loopback TCP connection, each wrapped.
func pair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ln = Listener(ln)
	type res struct {
		c   net.Conn
		err error
	}
	acc := make(chan res, 1)
	go func() { c, err := ln.Accept(); acc <- res{c, err} }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-acc
	if r.err != nil {
		t.Fatal(r.err)
	}
	client = Wrap(c)
	t.Cleanup(func() { client.Close(); r.c.Close() })
	return client, r.c
}

func TestWrapIsRaw(t *testing.T) {
	c, s := pair(t)
	if runtime.GOOS != "linux" {
		t.Skip("the raw path is Linux only")
	}
	for _, x := range []net.Conn{c, s} {
		if _, ok := x.(*Conn); !ok {
			t.Fatalf("got %T, want *rawio.Conn", x)
		}
	}
}

// exchange sends size bytes each way at once, in writes and reads of
// random sizes, and checks that each side gets exactly what the other sent.
func exchange(t *testing.T, a, b net.Conn, size int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	send := func(c net.Conn, seed uint64) [32]byte {
		rng := rand.New(rand.NewPCG(seed, 1))
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for off := 0; off < len(data); {
				n := min(len(data)-off, 1+rng.IntN(200<<10))
				m, err := c.Write(data[off : off+n])
				if err != nil {
					errs <- err
					return
				}
				if m != n {
					errs <- io.ErrShortWrite
					return
				}
				off += n
			}
		}()
		return sha256.Sum256(data)
	}
	recv := func(c net.Conn, want [32]byte) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := sha256.New()
			rng := rand.New(rand.NewPCG(7, 7))
			buf := make([]byte, 300<<10)
			for got := 0; got < size; {
				n, err := c.Read(buf[:min(1+rng.IntN(len(buf)), size-got)])
				h.Write(buf[:n])
				got += n
				if err != nil {
					errs <- err
					return
				}
			}
			if !bytes.Equal(h.Sum(nil), want[:]) {
				errs <- errors.New("received bytes differ from those sent")
			}
		}()
	}
	wantB := send(a, 1)
	wantA := send(b, 2)
	recv(b, wantB)
	recv(a, wantA)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestExchangePlain(t *testing.T) {
	c, s := pair(t)
	for _, size := range []int{1, 1000, 64 << 10, 8 << 20} {
		exchange(t, c, s, size)
	}
}

func TestExchangeTLS(t *testing.T) {
	ca, err := pki.NewCA("rawio test CA", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	is, err := ca.Issue(pki.Request{CommonName: "127.0.0.1", IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	srvCert, err := tls.X509KeyPair(is.CertPEM, is.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	c, s := pair(t)
	tc := tls.Client(c, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	ts := tls.Server(s, &tls.Config{Certificates: []tls.Certificate{srvCert}})
	for _, size := range []int{1, 1000, 64 << 10, 8 << 20} {
		exchange(t, tc, ts, size)
	}
}

// TestWaitFirstSeesLaterData: after a read that drained the socket, the
// next read waits for the poller; data sent afterwards must still arrive,
// however long after.
func TestWaitFirstSeesLaterData(t *testing.T) {
	c, s := pair(t)
	buf := make([]byte, 100)
	for i := range 50 {
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		if i%5 == 0 {
			time.Sleep(time.Millisecond)
		}
		_ = s.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := s.Read(buf)
		if err != nil || string(buf[:n]) != "ping" {
			t.Fatalf("read %d: %q, %v", i, buf[:n], err)
		}
	}
}

func TestReadDeadlineAndClose(t *testing.T) {
	c, s := pair(t)
	_ = s.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := s.Read(make([]byte, 10))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op != "read" {
		t.Errorf("Op = %q, want read", oe.Op)
	}
	_ = s.SetReadDeadline(time.Time{})
	c.Close()
	if _, err := s.Read(make([]byte, 10)); err != io.EOF {
		t.Fatalf("read after the peer closed: %v, want EOF", err)
	}
	s.Close()
	if _, err := s.Read(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after Close: %v, want net.ErrClosed", err)
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v, want net.ErrClosed", err)
	}
}

func TestWriteDeadline(t *testing.T) {
	_, s := pair(t)
	// Nobody reads the other end: the socket buffers fill and the write
	// must stop at its deadline with what it wrote so far.
	big := make([]byte, 64<<20)
	_ = s.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	n, err := s.Write(big)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write: %v, want a timeout", err)
	}
	if n <= 0 || n >= len(big) {
		t.Fatalf("wrote %d bytes before the deadline, want some but not all", n)
	}
}

// TestNoAllocs: the point of the raw path is a cheap call; it must not
// allocate.
func TestNoAllocs(t *testing.T) {
	c, s := pair(t)
	msg := make([]byte, 1024)
	buf := make([]byte, 4096)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < len(msg); {
			n, err := s.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per write and read, want 0", allocs)
	}
}

// BenchmarkPingPong: one 1 kB message each way per op over loopback, with
// net.TCPConn and with Conn. The difference is what entering and leaving
// the scheduler's "in a system call" state costs per read and write; the
// larger effect, on the monitor thread's wake-ups and hand-offs between
// calls, shows under load (scripts/bench, docs/benchmarks.md).
func BenchmarkPingPong(b *testing.B) {
	for _, raw := range []bool{false, true} {
		name := "net"
		if raw {
			name = "rawio"
		}
		b.Run(name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				if raw {
					c = Wrap(c)
				}
				defer c.Close()
				buf := make([]byte, 1024)
				for {
					if _, err := io.ReadFull(c, buf); err != nil {
						return
					}
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			}()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			if raw {
				c = Wrap(c)
			}
			defer c.Close()
			buf := make([]byte, 1024)
			b.SetBytes(2048)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestHandOverThroughSocket: memory written before a write and read after
// the matching read is handed over, not raced on, as with Go's own socket
// calls. Under -race, the detector fails this test if rawio loses that
// edge.
func TestHandOverThroughSocket(t *testing.T) {
	c, s := pair(t)
	shared := make([]int, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1)
		if _, err := s.Read(buf); err != nil {
			t.Error(err)
			return
		}
		if shared[0] != 42 {
			t.Errorf("shared = %d after the read, want 42", shared[0])
		}
	}()
	time.Sleep(10 * time.Millisecond) // the reader waits in the poller
	shared[0] = 42
	if _, err := c.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	<-done
}

// PeerClosed is false while the peer keeps the connection open, whether or
// not it sent bytes not read yet, and true once it closed it, even with
// bytes still waiting (a TLS peer's close_notify comes before its FIN).
func TestPeerClosed(t *testing.T) {
	if !enabled {
		t.Skip("no raw path on this system")
	}
	closedSoon := func(c net.Conn) bool {
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			if c.(*Conn).PeerClosed() {
				return true
			}
			time.Sleep(5 * time.Millisecond)
		}
		return false
	}
	c, s := pair(t)
	if c.(*Conn).PeerClosed() {
		t.Fatal("a fresh connection reads as closed by its peer")
	}
	if _, err := s.Write([]byte("unread")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if c.(*Conn).PeerClosed() {
		t.Error("a connection with bytes waiting reads as closed by its peer")
	}
	s.Close()
	if !closedSoon(c) {
		t.Error("a connection whose peer closed it (bytes still waiting) does not read as closed")
	}
	c.Close()

	c, s = pair(t)
	defer c.Close()
	s.(*Conn).tcp.SetLinger(0) // close with a reset
	s.Close()
	if !closedSoon(c) {
		t.Error("a connection reset by its peer does not read as closed")
	}
}

// BenchmarkPeerClosed: the check a keep-alive client makes before each
// request on a pooled connection (one getsockopt).
func BenchmarkPeerClosed(b *testing.B) {
	if !enabled {
		b.Skip("no raw path on this system")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if s, err := ln.Accept(); err == nil {
			defer s.Close()
			_, _ = io.Copy(io.Discard, s)
		}
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	c := Wrap(nc).(*Conn)
	defer c.Close()
	b.ReportAllocs()
	for b.Loop() {
		if c.PeerClosed() {
			b.Fatal("open connection reads as closed")
		}
	}
}
