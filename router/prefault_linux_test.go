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

// resident returns how many of the pages of b are resident (mincore).
func resident(t testing.TB, b []byte) (in, all int) {
	t.Helper()
	ps := os.Getpagesize()
	vec := make([]byte, (len(b)+ps-1)/ps)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptrOf(b), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatalf("mincore: %v", e)
	}
	for _, v := range vec {
		if v&1 != 0 {
			in++
		}
	}
	return in, len(vec)
}

// A store that reserves its memory has it resident from the start: the
// first laps of records must not fault their pages in one by one under the
// shard lock (prefault_linux.go).
func TestHopStoreReservePrefaulted(t *testing.T) {
	if !prefault(make([]byte, 4*os.Getpagesize())) {
		t.Skip("this kernel has no MADV_POPULATE_WRITE (Linux 5.14)")
	}
	defer func(m int) { hopReserveMax = m }(hopReserveMax)
	hopReserveMax = 64 << 20
	// Give freed heap memory back to the OS first, so that the store's
	// allocations are not pages some earlier test left resident.
	debug.FreeOSMemory()
	s := newHopStore(HopConfig{MaxRecords: 20_000}, "P", "n1")
	var in, all int
	for i := range s.shards {
		for _, c := range s.shards[i].chunks {
			for l := range c.arena {
				for _, b := range c.arena[l].blocks {
					i, a := resident(t, b[:hopBlock])
					in, all = in+i, all+a
				}
			}
			slots := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(c.slots))), len(c.slots)*int(unsafe.Sizeof(hopSlot{})))
			// The slots' first and last pages may be shared with other
			// objects; the whole pages between are what prefault covers.
			ps := os.Getpagesize()
			if off := ps - int(uintptrOf(slots)%uintptr(ps)); off < len(slots) {
				slots = slots[off:]
				slots = slots[:len(slots)/ps*ps]
				i, a := resident(t, slots)
				in, all = in+i, all+a
			}
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
