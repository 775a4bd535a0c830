package federation

import (
	"sync"
	"time"
)

// flights runs work keyed by a name (an address, a member) on goroutines
// of its own: at most one per key, and at most a limit of the counted ones
// at once. The rejoins and the binding checks use it: either can wait on a
// peer that never answers, and must hold up neither the other peers nor
// the pool's loop.
type flights struct {
	mu      sync.Mutex
	keys    map[string]bool // key in flight → counted
	counted int
	wg      sync.WaitGroup
	// ended receives a signal (coalesced) each time work ends and its key
	// is free again: a loop waiting for a free slot looks again.
	ended chan struct{}
}

func newFlights() *flights { return &flights{keys: map[string]bool{}, ended: make(chan struct{}, 1)} }

// start runs run on a goroutine of its own unless key is in flight, or
// (counted) limit counted ones are; it reports whether it did.
func (f *flights) start(key string, counted bool, limit int, run func()) bool {
	f.mu.Lock()
	_, busy := f.keys[key]
	ok := !busy && (!counted || f.counted < limit)
	if ok {
		f.keys[key] = counted
		if counted {
			f.counted++
		}
	}
	f.mu.Unlock()
	if !ok {
		return false
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer func() {
			f.mu.Lock()
			delete(f.keys, key)
			if counted {
				f.counted--
			}
			f.mu.Unlock()
			select {
			case f.ended <- struct{}{}:
			default:
			}
		}()
		run()
	}()
	return true
}

// wait waits for the work in flight, at most d (0: as long as it takes),
// and reports whether all of it ended.
func (f *flights) wait(d time.Duration) bool {
	if d <= 0 {
		f.wg.Wait()
		return true
	}
	done := make(chan struct{})
	go func() {
		f.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}
