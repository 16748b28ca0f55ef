package sim

import (
	_ "embed"
	"slices"
)

// h100ProfileJSON is the zoo measured on an NVIDIA H100 80GB HBM3 by `cw tools profile` with
// the cuda backend's executor (docs/zoo-h100.md says how and when).
//
//go:embed h100-zoo.json
var h100ProfileJSON []byte

// H100Profile parses the embedded H100 profile of the zoo (torchvision names, fp32).
func H100Profile() (*Profile, error) { return ParseProfile(h100ProfileJSON) }

// H100ProfileJSON returns the embedded H100 profile's bytes.
func H100ProfileJSON() []byte { return slices.Clone(h100ProfileJSON) }
