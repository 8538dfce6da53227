//go:build !race

package export_test

// raceEnabled says the race detector is on.
const raceEnabled = false
