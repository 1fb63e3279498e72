//go:build race

package outpost

// raceEnabled: the race detector enlarges every frame, so stack budgets
// measured without it do not apply.
const raceEnabled = true
