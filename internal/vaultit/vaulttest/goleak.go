package vaulttest

import "go.uber.org/goleak"

// GoleakOptions returns the goleak options that a test package using Start
// needs, for goroutines that outlive a Server although Start's cleanup has
// stopped its HTTP server and shut its core down. Use them as
//
//	func TestMain(m *testing.M) {
//		goleak.VerifyTestMain(m, vaulttest.GoleakOptions()...)
//	}
//
// Each option ignores one function, the one at the top of such a goroutine's
// stack; every other goroutine the core starts is stopped by its shutdown, so
// a Server that is not shut down still shows up as a leak. The goroutines, as
// found in Vault v1.21.4:
//
//   - vault.(*Core).setupCachedMFAResponseAuth.func1: a cleanup loop that
//     stops when the core's active context is cancelled. Core.Initialize runs
//     the unseal setup once with a context whose cancel function it drops, so
//     the loop started during initialisation never stops (one per Server).
//   - go-cache's (*janitor).Run: the core's caches (cluster peer addresses, used
//     MFA codes) run a janitor that stops only when the cache is garbage
//     collected, which the loop above prevents by keeping the core reachable.
//   - go.opencensus.io/stats/view.(*worker).start: started by that package's
//     init function, linked in through Vault's Google Cloud dependencies; it
//     lives as long as the process, with or without a Server.
func GoleakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("github.com/hashicorp/vault/vault.(*Core).setupCachedMFAResponseAuth.func1"),
		goleak.IgnoreTopFunction("github.com/patrickmn/go-cache.(*janitor).Run"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
	}
}
