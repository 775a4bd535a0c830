//go:build !linux

package rawio

import "net"

const enabled = false

// Wrap returns c: only Linux has the raw path.
func Wrap(c net.Conn) net.Conn { return c }
