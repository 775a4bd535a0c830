//go:build linux

package router

import (
	"os"
	"runtime/debug"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// resident returns how many of the pages of b are resident (mincore); b
// must start on a page.
func resident(t testing.TB, b []byte) (in, all int) {
	t.Helper()
	if len(b) == 0 {
		return 0, 0
	}
	ps := os.Getpagesize()
	vec := make([]byte, (len(b)+ps-1)/ps)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatalf("mincore: %v", e)
	}
	for _, v := range vec {
		if v&1 != 0 {
			in++
		}
	}
	return in, len(vec)
}

// wholePages returns the whole pages inside b, as prefault sees them.
func wholePages(b []byte) []byte {
	ps := os.Getpagesize()
	off := 0
	if r := int(uintptrOf(b) % uintptr(ps)); r != 0 {
		off = ps - r
	}
	if off >= len(b) {
		return nil
	}
	return b[off : off+(len(b)-off)/ps*ps]
}

func skipWithoutPopulate(t *testing.T) {
	t.Helper()
	if !prefault(make([]byte, 4*os.Getpagesize())) {
		t.Skip("this kernel has no MADV_POPULATE_WRITE (Linux 5.14)")
	}
}

// prefault makes every page of a fresh mapping resident, and leaves what
// it holds as it was.
func TestPrefault(t *testing.T) {
	skipWithoutPopulate(t)
	ps := os.Getpagesize()
	m, err := unix.Mmap(-1, 0, 64*ps, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	// Huge pages would fault the whole region in at the first write.
	_ = unix.Madvise(m, unix.MADV_NOHUGEPAGE)
	if in, _ := resident(t, m); in != 0 {
		t.Fatalf("%d pages of a fresh mapping resident before prefault", in)
	}
	m[0] = 7
	if !prefault(m) {
		t.Fatal("prefault refused")
	}
	if in, all := resident(t, m); in != all {
		t.Fatalf("%d of %d pages resident after prefault, want all", in, all)
	}
	if m[0] != 7 || m[len(m)-1] != 0 {
		t.Fatalf("prefault changed the memory: %d %d", m[0], m[len(m)-1])
	}
}

// A store that reserves its memory has it resident from the start: the
// first laps of records must not fault their pages in one by one under the
// shard lock (prefault_linux.go). TestPrefault is the direct test of
// prefault; this one checks that the store uses it on all it reserves.
func TestHopStoreReservePrefaulted(t *testing.T) {
	skipWithoutPopulate(t)
	if os.Getpagesize() > 8<<10 {
		t.Skip("arena blocks start on 8 KiB boundaries, not on this kernel's pages")
	}
	defer func(m int) { hopReserveMax = m }(hopReserveMax)
	hopReserveMax = 64 << 20
	// Give freed heap memory back to the OS first, so that the store's
	// allocations are not pages some earlier test left resident.
	debug.FreeOSMemory()
	s := newHopStore(HopConfig{MaxRecords: 20_000}, "P", "n1")
	var in, all int
	count := func(b []byte) {
		i, a := resident(t, b)
		in, all = in+i, all+a
	}
	for k := range s.shards {
		for _, c := range s.shards[k].chunks {
			for l := range c.arena {
				for _, b := range c.arena[l].blocks {
					count(b[:hopBlock])
				}
			}
			count(wholePages(c.slotBytes()))
		}
	}
	if all == 0 || in != all {
		t.Fatalf("%d of the reserved store's %d pages are resident, want all", in, all)
	}
}

// BenchmarkRecordHopFirstLap records into new stores that reserve their
// memory, as a node's first calls do: the cost of the pages' first writes
// is in it (BenchmarkRecordHop measures a store already written through).
func BenchmarkRecordHopFirstLap(b *testing.B) {
	defer func(m int) { hopReserveMax = m }(hopReserveMax)
	hopReserveMax = 64 << 20
	const records = 20_000
	now := time.Now()
	e := hopAt("trace", "corr", now)
	e.contract = "urn:riv:clinicalprocess:healthcond:description:GetCareDocumentationResponder:2"
	e.routeURL, e.next = "vaxel://NATIONAL", "https://127.0.0.1:28200/vp"
	var s *hopStore
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		if n%records == 0 {
			b.StopTimer()
			s = nil
			debug.FreeOSMemory()
			s = newHopStore(HopConfig{MaxRecords: records}, "P", "n1")
			b.StartTimer()
		}
		s.add(e)
		n++
	}
}
