//go:build race

package rawio

import "sync/atomic"

// Go's own socket calls tell the race detector that what a goroutine did
// before a write happens before what another does after a read (syscall's
// ioSync), so that data handed over through a socket is not reported as a
// race. RawSyscall skips that; an atomic gives the same edges, in race
// builds only.
var ioSync atomic.Uint64

func releaseIO() { ioSync.Add(1) }
func acquireIO() { ioSync.Load() }
