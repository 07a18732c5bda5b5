package pgtest

import "syscall"

// setParentDeathSignal has the kernel send postgres SIGINT (a fast
// shutdown: clients disconnected, the cluster stopped cleanly) when the
// process that started it dies, however it dies (SIGKILL, SIGQUIT, a
// panic): without it, a throwaway cluster outlives a server that never ran
// its Stop. It covers the direct child only (the postmaster, which takes
// its own children down), and it fires when the OS thread that started the
// child exits, which in Go happens only at the process's end unless a
// goroutine that locked its thread returns without unlocking it; the Go
// runtime sets it after switching credentials, so it holds for a server
// run as the postgres user too.
func setParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGINT }
