//go:build race

package export_test

// raceEnabled says the race detector is on, which makes a 1,000,000-row
// export too slow to test.
const raceEnabled = true
