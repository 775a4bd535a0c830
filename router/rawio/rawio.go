// Package rawio gives the router's TCP connections a cheaper path through
// the Go runtime for their reads and writes, without leaving Go's network
// poller.
//
// Why. A proxy's socket calls on loopback are long for a system call: a
// write of a few kilobytes to a local peer runs the peer's whole TCP receive
// path and its wake-up, 5–20 µs. Go makes every socket read and write with
// syscall.Syscall, which marks the goroutine's P as "in a system call". The
// runtime's monitor thread (sysmon) takes back a P that it finds in the same
// system call on two of its ticks (20 µs apart when it is busy) and hands it
// to another thread, and a goroutine that enters a system call while the
// monitor sleeps wakes the monitor first. On a node with few CPUs each of
// those is a thread switch, futex calls, and a run queue handed from one
// thread to another, for a call that never blocks: the socket is
// non-blocking and the poller waits for it. Profiles of the router at
// 1,000 calls/s showed a quarter of its CPU in those futex wake-ups
// (docs/benchmarks.md, "Socket calls without the scheduler").
//
// What. Conn makes the same non-blocking read(2) and write(2) with
// syscall.RawSyscall inside syscall.RawConn's Read and Write: the P stays
// with the goroutine for the few microseconds the call takes, while the
// poller, deadlines and Close behave as for any net.Conn. (A read still
// tries the socket before it waits: the poller forgets, at the start of
// every read, the readiness it saw before, so waiting first could wait for
// data that is already there.)
//
// Only Linux has it; elsewhere Wrap and Listener return what they are given.
package rawio

import "net"

// Listener returns ln with every accepted TCP connection wrapped by Wrap.
func Listener(ln net.Listener) net.Listener {
	if tl, ok := ln.(*net.TCPListener); ok && enabled {
		return listener{tl}
	}
	return ln
}

type listener struct{ *net.TCPListener }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.AcceptTCP()
	if err != nil {
		return nil, err
	}
	return Wrap(c), nil
}
