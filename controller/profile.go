package controller

import (
	"path"
	"strings"

	"github.com/clockwork-go/clockwork/runtime/sim"
	"github.com/clockwork-go/clockwork/wire"
)

// SimProfile returns a Profile that seeds estimates from a measured profile (the format of
// runtime/sim, written by `cw tools profile`): the model is looked up by its registered name,
// then by its path's base name without extension; exec seeds are the profile's p99 per batch.
func SimProfile(p *sim.Profile) Profile {
	return func(name string, desc *wire.ModelDesc) ([]int64, int64, bool) {
		m := p.Model(name)
		if m == nil {
			m = p.Model(strings.TrimSuffix(path.Base(string(desc.Name)), path.Ext(string(desc.Name))))
		}
		if m == nil {
			return nil, 0, false
		}
		exec := make([]int64, len(desc.Batches))
		for i, b := range desc.Batches {
			e, ok := m.Batch(int(b))
			if !ok {
				return nil, 0, false
			}
			exec[i] = max(e.P99Ns, e.P50Ns)
		}
		return exec, m.LoadNs, true
	}
}
