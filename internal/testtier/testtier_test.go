package testtier

import "testing"

// TestIntegration fails when Integration lets it run under -short; without
// -short it must run.
func TestIntegration(t *testing.T) {
	Integration(t, "nothing: it checks the helper")
	if testing.Short() {
		t.Fatal("Integration did not skip under -short")
	}
}
