//go:build !linux

package harness

import "os/exec"

// killWithParent has no portable equivalent outside Linux; Stop and the
// test's cleanup end the node.
func killWithParent(*exec.Cmd) {}
