//go:build linux

package rawio

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

const enabled = true

// maxRW bounds one read(2) or write(2), as internal/poll does, so that the
// P is never held for a copy of unbounded size.
const maxRW = 1 << 30

// Conn is a *net.TCPConn whose Read and Write go through RawSyscall (see
// the package comment). Every other method is the TCPConn's own.
type Conn struct {
	tcp *net.TCPConn
	rc  syscall.RawConn

	// Read and Write each hand their buffer to a callback bound once, at
	// Wrap, so that a call allocates nothing. The mutexes keep those
	// fields to one reader and one writer at a time, as net.Conn allows
	// concurrent calls; RawConn's own locks come later.
	rmu    sync.Mutex
	rbuf   []byte
	rn     int
	rerr   syscall.Errno
	readFn func(uintptr) bool

	wmu     sync.Mutex
	wbuf    []byte
	wn      int
	werr    syscall.Errno
	writeFn func(uintptr) bool

	// PeerClosed's callback, its getsockopt buffers and result, under rmu.
	stateFn    func(uintptr)
	tcpInfo    syscall.TCPInfo
	tcpInfoLen uint32
	peerClosed bool
}

// Wrap returns c as a *Conn when it is a TCP connection, otherwise c.
func Wrap(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	w := &Conn{tcp: tc, rc: rc}
	w.readFn = w.doRead
	w.writeFn = w.doWrite
	w.stateFn = w.doState
	return w
}

// PeerClosed reports whether the peer has closed the connection or reset
// it: the socket has left TCP's established state (a FIN received puts it
// in CLOSE_WAIT), whatever bytes are still waiting to be read (a TLS
// peer's close_notify comes before its FIN; a session ticket is no close).
// It reads nothing and does not wait. A keep-alive client asks it before
// it writes a request on a pooled connection: a request written to a
// connection the peer has closed fails after the write, when nobody can
// tell any more whether the peer read it, while one not written can go on
// another connection.
func (c *Conn) PeerClosed() bool {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.peerClosed = false
	if err := c.rc.Control(c.stateFn); err != nil {
		return true // closed on this side
	}
	return c.peerClosed
}

// tcpEstablished is TCP_ESTABLISHED, tcpi_state of a connection open both
// ways.
const tcpEstablished = 1

func (c *Conn) doState(fd uintptr) {
	c.tcpInfoLen = uint32(unsafe.Sizeof(c.tcpInfo))
	_, _, e := syscall.RawSyscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_INFO,
		uintptr(unsafe.Pointer(&c.tcpInfo)), uintptr(unsafe.Pointer(&c.tcpInfoLen)), 0)
	c.peerClosed = e != 0 || c.tcpInfo.State != tcpEstablished
}

func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(p) > maxRW {
		p = p[:maxRW]
	}
	c.rmu.Lock()
	c.rbuf, c.rn, c.rerr = p, 0, 0
	err := c.rc.Read(c.readFn)
	acquireIO()
	n, errno := c.rn, c.rerr
	c.rbuf = nil
	c.rmu.Unlock()
	switch {
	case err != nil:
		return 0, opName(err, "read")
	case errno != 0:
		return 0, c.opError("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// doRead runs inside RawConn.Read: false means "wait until the poller
// says the socket is readable, then call again".
func (c *Conn) doRead(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&c.rbuf[0])), uintptr(len(c.rbuf)))
		switch e {
		case 0:
			c.rn = int(n)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			c.rerr = e
			return true
		}
	}
}

func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	c.wbuf, c.wn, c.werr = p, 0, 0
	var err error
	if len(p) > 0 {
		releaseIO()
		err = c.rc.Write(c.writeFn)
	}
	n, errno := c.wn, c.werr
	c.wbuf = nil
	c.wmu.Unlock()
	switch {
	case err != nil:
		return n, opName(err, "write")
	case errno != 0:
		return n, c.opError("write", os.NewSyscallError("write", errno))
	}
	return n, nil
}

// doWrite runs inside RawConn.Write: false means "wait until the socket
// is writable, then call again".
func (c *Conn) doWrite(fd uintptr) bool {
	for c.wn < len(c.wbuf) {
		b := c.wbuf[c.wn:]
		if len(b) > maxRW {
			b = b[:maxRW]
		}
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		switch e {
		case 0:
			c.wn += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			c.werr = e
			return true
		}
	}
	return true
}

// opName gives RawConn's errors ("raw-read: i/o timeout") the operation
// name net.TCPConn uses, so that logs read the same.
func opName(err error, op string) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		oe.Op = op
	}
	return err
}

func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.tcp.LocalAddr(), Addr: c.tcp.RemoteAddr(), Err: err}
}

func (c *Conn) Close() error                       { return c.tcp.Close() }
func (c *Conn) LocalAddr() net.Addr                { return c.tcp.LocalAddr() }
func (c *Conn) RemoteAddr() net.Addr               { return c.tcp.RemoteAddr() }
func (c *Conn) SetDeadline(t time.Time) error      { return c.tcp.SetDeadline(t) }
func (c *Conn) SetReadDeadline(t time.Time) error  { return c.tcp.SetReadDeadline(t) }
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.tcp.SetWriteDeadline(t) }
