// Package invariants switches expensive consistency checks on with the `invariants` build tag,
// after pebble's internal/invariants. `make test` sets the tag; release builds leave it off, so
// the checks cost nothing there.
//
//	if invariants.Enabled { ...check, panic("BUG: ...") on failure... }
package invariants
