// Package harness runs the built vaxel binary for the black-box acceptance
// tests in ../: it builds the binary, generates a throw-away PKI, writes a
// node configuration, starts and stops node processes, talks to their admin
// API, and provides loopback producers that record what they receive.
//
// Nothing here imports the product's router, node or tak packages: the tests
// see vaxel only as an operator, a consumer and a producer would. The one
// exception is package pki, the project's development PKI, which generates
// the certificates at run time (no key is ever committed).
package harness

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// ModuleRoot returns the directory of the vaxel module (from `go env GOMOD`).
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("go env GOMOD: not inside a module")
	}
	return filepath.Dir(mod), nil
}

// BinaryEnv names an environment variable that, when set, points at a
// vaxel binary to test instead of building one (a release artifact, or a
// binary built with -race).
const BinaryEnv = "TEST_VAXEL_BINARY"

// Build compiles ./cmd/vaxel into dir once per test process and returns the
// binary's path. Later calls return the first result.
func Build(dir string) (string, error) {
	buildOnce.Do(func() {
		if p := os.Getenv(BinaryEnv); p != "" {
			buildPath, buildErr = filepath.Abs(p)
			return
		}
		root, err := ModuleRoot()
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "vaxel")
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/vaxel")
		cmd.Dir = root
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/vaxel: %w\n%s", err, out.String())
			return
		}
	})
	return buildPath, buildErr
}
