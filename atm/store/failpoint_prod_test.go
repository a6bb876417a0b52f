//go:build !failpoint

package store

import "testing"

// TestProductionBuildHasNoFailpoints: without the build tag failpoint the
// migration's failure points do nothing, whatever the environment says
// (were they compiled in, this test's own process would be killed).
func TestProductionBuildHasNoFailpoints(t *testing.T) {
	for _, point := range []string{FailpointMigrateSealed, FailpointMigrateCommitted} {
		t.Setenv(FailpointEnv, point)
		db := openAt(t, fixture(t, "schema2.db"), Options{JournalAuth: testAuth(fixtureKey)})
		if db.MigratedFrom() != 2 {
			t.Fatalf("MigratedFrom %d", db.MigratedFrom())
		}
		checkFixture(t, db)
		db.Close()
	}
}
