package harness

import (
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
)

// ClosedPort holds a loopback TCP port that refuses connections: a socket
// bound to it but not listening. Unlike a port that was free a moment ago,
// nobody else can take it, so a producer at this address is refused for as
// long as the test wants, and comes up exactly when Listen is called.
type ClosedPort struct {
	Addr string // 127.0.0.1:port

	mu sync.Mutex
	fd int // -1 once handed to a listener or closed
}

// NewClosedPort binds a socket to a free loopback port without listening.
func NewClosedPort() (*ClosedPort, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	syscall.CloseOnExec(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("bind: %w", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("getsockname: %w", err)
	}
	in4, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		syscall.Close(fd)
		return nil, fmt.Errorf("getsockname: unexpected %T", sa)
	}
	return &ClosedPort{Addr: fmt.Sprintf("127.0.0.1:%d", in4.Port), fd: fd}, nil
}

// Listen starts listening on the port and returns the listener; the port
// no longer refuses connections. It can be called once.
func (c *ClosedPort) Listen() (net.Listener, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return nil, fmt.Errorf("port %s: already listening or closed", c.Addr)
	}
	if err := syscall.Listen(c.fd, 128); err != nil {
		return nil, fmt.Errorf("listen %s: %w", c.Addr, err)
	}
	f := os.NewFile(uintptr(c.fd), c.Addr)
	c.fd = -1
	defer f.Close() // FileListener dups the descriptor
	return net.FileListener(f)
}

// Close releases the port if Listen was not called.
func (c *ClosedPort) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd >= 0 {
		syscall.Close(c.fd)
		c.fd = -1
	}
}
