package store

// FailpointEnv names, in a build with the tag failpoint, the failure point
// at which the process kills itself (crash tests): "migrate-sealed" kills
// it there; "migrate-sealed+3ms" lets it go on and kills it 3 ms later
// (inside bbolt's commit, say). A production build (without the tag) has
// no failure points and ignores the variable (failpoint_prod.go).
const FailpointEnv = "CARDLESS_STORE_FAILPOINT"
