//go:build !linux

package router

// prefault is a no-op where MADV_POPULATE_WRITE does not exist: pages
// fault in on first write (prefault_linux.go says why that is slow).
func prefault([]byte) bool { return false }
