// Package testtier sorts kforge's Go tests into their two tiers.
// `go test -short ./...` (make unit-short) runs the unit tests, which use
// fakes and need nothing but Go. Without -short (make unit) the
// integration tests run too: they need what `make artifacts` builds, a
// real containerd or sshd, root, or docker.
package testtier

import "testing"

// Integration skips t under -short. needs says what the test uses that a
// unit test may not, e.g. "sshd and root".
func Integration(t testing.TB, needs string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("integration test (needs %s): skipped with -short; `make unit` runs it", needs)
	}
}
