package sim

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
)

// ProfileVersion is the profile file format version this package reads and writes.
const ProfileVersion = 1

// Limits on profile contents, checked before anything is built from them.
const (
	MaxProfileBytes  = 64 << 20 // a profile file
	MaxProfileModels = 1 << 16
	MaxModelBatches  = 32      // batch sizes per model (wire.MaxBatchSizes)
	MaxBatch         = 1 << 12 // largest batch size
	MaxModelBytes    = 1 << 40 // weights, per-item input/output, workspace
	MaxDurationNs    = int64(600e9)
	MaxNameLen       = 255
)

// ErrBadProfile is wrapped by every profile parsing and validation error.
var ErrBadProfile = errors.New("bad profile")

// Profile is the measured behaviour of models on one kind of GPU: what the sim backend emulates
// and what the controller uses as initial estimates. `cw tools profile` writes it from real GPU
// runs; DefaultProfile is the Clockwork zoo on a V100.
//
// The file is JSON (a control-path format, read once at start; readable and diffable):
//
//	{"version": 1, "device": "...", "h2d_bytes_per_sec": 12300000000, "d2h_bytes_per_sec": ...,
//	 "source": ["where the numbers came from", ...],
//	 "models": [{"name": "resnet50_v2", "weights_bytes": 102160300, "input_bytes": 602112,
//	             "output_bytes": 4000, "workspace_bytes": 9834496, "load_ns": 8320000,
//	             "batches": [{"batch": 1, "p50_ns": 2730000, "p99_ns": ..., "p9999_ns": ...}, ...],
//	             "note": "..."}]}
//
// Sizes are bytes; input_bytes and output_bytes are per item (a batch of b moves b times that);
// durations are nanoseconds.
type Profile struct {
	Version int    `json:"version"`
	Device  string `json:"device"`
	// H2DBytesPerSec and D2HBytesPerSec are the measured copy bandwidths (0: unknown).
	H2DBytesPerSec float64        `json:"h2d_bytes_per_sec,omitempty"`
	D2HBytesPerSec float64        `json:"d2h_bytes_per_sec,omitempty"`
	Source         []string       `json:"source,omitempty"`
	Models         []ModelProfile `json:"models"`
}

// ModelProfile is one model's entry. On the sim backend it is the model itself: it implements
// device.Model and is what Device.Prepare takes.
type ModelProfile struct {
	ModelName      string `json:"name"`
	WeightsBytes   int64  `json:"weights_bytes"`
	InputBytes     int64  `json:"input_bytes"`
	OutputBytes    int64  `json:"output_bytes"`
	WorkspaceBytes int64  `json:"workspace_bytes,omitempty"`
	// LoadNs is the measured time to copy the weights host → device (LOAD).
	LoadNs  int64          `json:"load_ns"`
	Batches []BatchProfile `json:"batches"`
	Note    string         `json:"note,omitempty"`
}

// BatchProfile is the measured execution time of one batch size: percentiles of the device
// time of one run, executed one at a time on an otherwise idle GPU.
type BatchProfile struct {
	Batch   int   `json:"batch"`
	P50Ns   int64 `json:"p50_ns"`
	P99Ns   int64 `json:"p99_ns"`
	P9999Ns int64 `json:"p9999_ns"`
}

// Name implements device.Model.
func (m *ModelProfile) Name() string { return m.ModelName }

// Batch returns the entry for batch size b.
func (m *ModelProfile) Batch(b int) (BatchProfile, bool) {
	for _, e := range m.Batches {
		if e.Batch == b {
			return e, true
		}
	}
	return BatchProfile{}, false
}

// BatchSizes returns the profiled batch sizes, ascending. Allocates.
func (m *ModelProfile) BatchSizes() []int {
	out := make([]int, len(m.Batches))
	for i, e := range m.Batches {
		out[i] = e.Batch
	}
	return out
}

// Model returns the entry named name, or nil.
func (p *Profile) Model(name string) *ModelProfile {
	for i := range p.Models {
		if p.Models[i].ModelName == name {
			return &p.Models[i]
		}
	}
	return nil
}

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadProfile, fmt.Sprintf(format, args...))
}

// Validate checks one model entry: a name, sizes and durations in range, batch sizes strictly
// ascending, and p50 ≤ p99 ≤ p99.99 for each.
func (m *ModelProfile) Validate() error {
	if m.ModelName == "" || len(m.ModelName) > MaxNameLen {
		return bad("model name %q: want 1 to %d bytes", m.ModelName, MaxNameLen)
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{"weights_bytes", m.WeightsBytes}, {"input_bytes", m.InputBytes}, {"output_bytes", m.OutputBytes}, {"workspace_bytes", m.WorkspaceBytes}} {
		if f.v < 0 || f.v > MaxModelBytes {
			return bad("model %q: %s %d outside [0, %d]", m.ModelName, f.name, f.v, int64(MaxModelBytes))
		}
	}
	if m.LoadNs < 0 || m.LoadNs > MaxDurationNs {
		return bad("model %q: load_ns %d outside [0, %d]", m.ModelName, m.LoadNs, MaxDurationNs)
	}
	if len(m.Batches) == 0 || len(m.Batches) > MaxModelBatches {
		return bad("model %q: %d batch sizes; want 1 to %d", m.ModelName, len(m.Batches), MaxModelBatches)
	}
	prev := 0
	for _, b := range m.Batches {
		if b.Batch <= prev || b.Batch > MaxBatch {
			return bad("model %q: batch %d after %d; want ascending sizes in [1, %d]", m.ModelName, b.Batch, prev, MaxBatch)
		}
		prev = b.Batch
		if b.P50Ns <= 0 || b.P50Ns > b.P99Ns || b.P99Ns > b.P9999Ns || b.P9999Ns > MaxDurationNs {
			return bad("model %q batch %d: want 0 < p50 %d ≤ p99 %d ≤ p99.99 %d ≤ %d", m.ModelName, b.Batch, b.P50Ns, b.P99Ns, b.P9999Ns, MaxDurationNs)
		}
		if m.InputBytes*int64(b.Batch) > MaxModelBytes || m.OutputBytes*int64(b.Batch) > MaxModelBytes {
			return bad("model %q batch %d: batch input or output over %d bytes", m.ModelName, b.Batch, int64(MaxModelBytes))
		}
	}
	return nil
}

// Validate checks the whole profile: the version, bandwidths, every model, unique names.
func (p *Profile) Validate() error {
	if p.Version != ProfileVersion {
		return bad("version %d; this build reads version %d (rewrite it with cw tools profile)", p.Version, ProfileVersion)
	}
	if !(p.H2DBytesPerSec >= 0 && p.D2HBytesPerSec >= 0) {
		return bad("negative or NaN bandwidth h2d=%v d2h=%v", p.H2DBytesPerSec, p.D2HBytesPerSec)
	}
	if len(p.Models) > MaxProfileModels {
		return bad("%d models; at most %d", len(p.Models), MaxProfileModels)
	}
	seen := make(map[string]bool, len(p.Models))
	for i := range p.Models {
		m := &p.Models[i]
		if err := m.Validate(); err != nil {
			return err
		}
		if seen[m.ModelName] {
			return bad("model %q listed twice", m.ModelName)
		}
		seen[m.ModelName] = true
	}
	return nil
}

// ParseProfile decodes and validates a profile file's bytes. Bad input returns an error
// wrapping ErrBadProfile (or the JSON error); it never panics.
func ParseProfile(data []byte) (*Profile, error) {
	if len(data) > MaxProfileBytes {
		return nil, bad("%d bytes over %d", len(data), MaxProfileBytes)
	}
	var p Profile
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("cannot decode profile: %w: %w", ErrBadProfile, err)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// ParseModelProfile decodes and validates one model entry (an uploaded sim model).
func ParseModelProfile(data []byte) (*ModelProfile, error) {
	if len(data) > MaxProfileBytes {
		return nil, bad("%d bytes over %d", len(data), MaxProfileBytes)
	}
	var m ModelProfile
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("cannot decode model profile: %w: %w", ErrBadProfile, err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// LoadProfile reads and validates a profile file.
func LoadProfile(path string) (*Profile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read profile: %w", err)
	}
	p, err := ParseProfile(data)
	if err != nil {
		return nil, fmt.Errorf("profile %s: %w", path, err)
	}
	return p, nil
}

// Encode returns the profile as indented JSON, the file format. It validates first.
func (p *Profile) Encode() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(p, "", " ")
	if err != nil {
		return nil, fmt.Errorf("cannot encode profile: %w", err)
	}
	return append(b, '\n'), nil
}

// Clone returns a deep copy, so a caller may edit it.
func (p *Profile) Clone() *Profile {
	q := *p
	q.Source = slices.Clone(p.Source)
	q.Models = slices.Clone(p.Models)
	for i := range q.Models {
		q.Models[i].Batches = slices.Clone(q.Models[i].Batches)
	}
	return &q
}

//go:embed v100-zoo.json
var defaultProfileJSON []byte

var defaultProfile = sync.OnceValue(func() *Profile {
	p, err := ParseProfile(defaultProfileJSON)
	if err != nil {
		panic("BUG: sim: the embedded default profile does not parse: " + err.Error())
	}
	return p
})

// DefaultProfile returns the shipped profile: the 64 models of the Clockwork zoo table on a V100
// (clockwork.md §I); its Source lines say where every number came from. The result is shared:
// call Clone before changing it.
func DefaultProfile() *Profile { return defaultProfile() }

// DefaultProfileJSON returns the embedded file's bytes (for `cw tools profile -default`).
func DefaultProfileJSON() []byte { return slices.Clone(defaultProfileJSON) }
