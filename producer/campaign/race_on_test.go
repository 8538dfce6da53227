//go:build race

package campaign_test

// raceEnabled says the race detector is on, which makes a 100,000-user
// campaign too slow to test.
const raceEnabled = true
