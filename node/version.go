package node

import "runtime/debug"

// Version is set at build time (-ldflags "-X github.com/vaxel/vaxel/node.Version=…"),
// else taken from the module's build information.
var Version = ""

func init() {
	if Version != "" {
		return
	}
	Version = "devel"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		Version = bi.Main.Version
	}
}
