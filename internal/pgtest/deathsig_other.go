//go:build !linux

package pgtest

import "syscall"

// setParentDeathSignal does nothing: a parent-death signal exists on Linux
// only. Elsewhere a cluster whose starter dies without calling Stop keeps
// running until it is stopped by hand (its data directory names it).
func setParentDeathSignal(*syscall.SysProcAttr) {}
