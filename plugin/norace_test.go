//go:build !race

package outpost

const raceEnabled = false
