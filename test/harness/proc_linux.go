package harness

import (
	"os/exec"
	"syscall"
)

// killWithParent makes the kernel kill the node if the test process dies
// (a timeout panic, a kill), so no vaxel is left holding ports.
func killWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
