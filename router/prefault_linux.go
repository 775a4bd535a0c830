//go:build linux

package router

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// prefault makes the pages inside b resident and writable now, in one
// system call (MADV_POPULATE_WRITE, Linux 5.14), without changing what b
// holds. It reports whether the kernel did so; an older kernel refuses and
// the pages fault in on first write as before.
//
// Why: a hop store reserves its memory when it is made, and each page of
// it faulted in on the first write of its first lap, under the shard lock
// of a call's record. On this project's VMs a fault costs some 11 µs (a
// paravirtualised MMU): the middle node of the benchmark chain spent about
// 3 µs per call in them for its first 200,000 calls. Touching 64 MB page
// by page took 175 ms there, one MADV_POPULATE_WRITE of it 10 ms; the
// default store (two calls per chunk) takes 16-40 ms when a node starts.
func prefault(b []byte) bool {
	ps := os.Getpagesize()
	// madvise wants a page-aligned start; only whole pages inside b are
	// populated. Go aligns large objects to its own 8 KiB pages, so with
	// 4 KiB pages that is all of a large allocation; with bigger ones the
	// edge pages fault in on first write, as without prefault.
	off := 0
	if r := int(uintptrOf(b) % uintptr(ps)); r != 0 {
		off = ps - r
	}
	n := (len(b) - off) / ps * ps
	if n <= 0 {
		return true
	}
	return unix.Madvise(b[off:off+n], unix.MADV_POPULATE_WRITE) == nil
}

func uintptrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }
