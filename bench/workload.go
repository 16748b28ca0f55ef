package bench

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Arrival is one request of an open-loop workload, fixed before the run.
type Arrival struct {
	AtNs  int64 // scheduled send time from the run's start
	Model int32 // index into the run's model list
	SLONs int64 // latency objective; 0: the controller's default
}

func sortArrivals(a []Arrival) {
	slices.SortStableFunc(a, func(x, y Arrival) int { return cmp.Compare(x.AtNs, y.AtNs) })
}

// Poisson returns open-loop Poisson arrivals for durNs: model m at rates[m] requests per second,
// independently, with sloNs on every request.
func Poisson(rates []float64, durNs, sloNs int64, seed uint64) ([]Arrival, error) {
	var total float64
	for m, r := range rates {
		if r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
			return nil, fmt.Errorf("cannot make a Poisson workload: model %d has rate %v; rates must be finite and >= 0", m, r)
		}
		total += r
	}
	if total == 0 || durNs <= 0 {
		return nil, nil
	}
	rng := rand.New(rand.NewPCG(seed, 0x9015))
	cum := make([]float64, len(rates))
	acc := 0.0
	for m, r := range rates {
		acc += r / total
		cum[m] = acc
	}
	out := make([]Arrival, 0, int(total*float64(durNs)/1e9*1.05)+16)
	for t := rng.ExpFloat64() / total * 1e9; t < float64(durNs); t += rng.ExpFloat64() / total * 1e9 {
		m, _ := slices.BinarySearch(cum, rng.Float64())
		out = append(out, Arrival{AtNs: int64(t), Model: int32(min(m, len(rates)-1)), SLONs: sloNs})
	}
	return out, nil
}

// Bursty returns Poisson arrivals that flow only during ON periods: each model alternates ON and
// OFF phases of exponential length (means onNs and offNs, starting in a random phase), sending at
// rates[m] while ON (the original's BurstyPoissonOpenLoop).
func Bursty(rates []float64, onNs, offNs, durNs, sloNs int64, seed uint64) ([]Arrival, error) {
	if onNs <= 0 || offNs < 0 {
		return nil, fmt.Errorf("cannot make a bursty workload: on %d ns, off %d ns; on must be > 0 and off >= 0", onNs, offNs)
	}
	rng := rand.New(rand.NewPCG(seed, 0xb0257))
	var out []Arrival
	for m, r := range rates {
		if r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
			return nil, fmt.Errorf("cannot make a bursty workload: model %d has rate %v", m, r)
		}
		if r == 0 {
			continue
		}
		on := rng.Float64()*float64(onNs+offNs) < float64(onNs)
		t := 0.0
		for t < float64(durNs) {
			mean := float64(offNs)
			if on {
				mean = float64(onNs)
			}
			end := math.Min(t+rng.ExpFloat64()*mean, float64(durNs))
			if on {
				for x := t + rng.ExpFloat64()/r*1e9; x < end; x += rng.ExpFloat64() / r * 1e9 {
					out = append(out, Arrival{AtNs: int64(x), Model: int32(m), SLONs: sloNs})
				}
			}
			t, on = end, !on
		}
	}
	sortArrivals(out)
	return out, nil
}

// SLOSweep sets each arrival's SLO to startNs × factor^k for the k-th interval of intervalNs it
// falls in, and drops the arrivals after the SLO would exceed endNs (the original's slo-exp-1:
// start at a multiple of the batch-1 exec time, grow ×factor every interval).
func SLOSweep(a []Arrival, startNs int64, factor float64, intervalNs, endNs int64) ([]Arrival, error) {
	if startNs <= 0 || factor <= 1 || intervalNs <= 0 || endNs < startNs {
		return nil, fmt.Errorf("cannot sweep SLOs: start %d ns, factor %v, interval %d ns, end %d ns; need start > 0, factor > 1, interval > 0, end >= start",
			startNs, factor, intervalNs, endNs)
	}
	out := a[:0]
	for _, x := range a {
		slo := float64(startNs) * math.Pow(factor, float64(x.AtNs/intervalNs))
		if slo > float64(endNs)*(1+1e-9) {
			break
		}
		x.SLONs = int64(slo)
		out = append(out, x)
	}
	return out, nil
}

// RampConfig is the original's §6.2 workload (bursty_experiment): after LeadInNs, one more
// "major" model becomes active every StepNs, up to Models; MajorRate requests per second are spread
// round-robin over the active major models (models 1..Models), and model 0 takes a steady Poisson
// MinorRate.
type RampConfig struct {
	Models           int
	LeadInNs, StepNs int64
	MajorRate        float64
	MinorRate        float64
	DurNs, SLONs     int64
	Seed             uint64
	StartActive      int // active major models during the lead-in (the original: 1)
}

// Ramp returns the arrivals of cfg, model indices 0 (minor) and 1..cfg.Models (major).
func Ramp(cfg RampConfig) ([]Arrival, error) {
	if cfg.Models < 1 || cfg.StepNs <= 0 || cfg.MajorRate <= 0 || cfg.DurNs <= 0 {
		return nil, fmt.Errorf("cannot make a ramp workload: %d models, step %d ns, major rate %v, duration %d ns; all must be > 0",
			cfg.Models, cfg.StepNs, cfg.MajorRate, cfg.DurNs)
	}
	start := max(cfg.StartActive, 1)
	var out []Arrival
	if cfg.MinorRate > 0 {
		var err error
		if out, err = Poisson([]float64{cfg.MinorRate}, cfg.DurNs, cfg.SLONs, cfg.Seed); err != nil {
			return nil, err
		}
	}
	gap := 1e9 / cfg.MajorRate
	next := 0
	for i := 0; ; i++ {
		t := int64(float64(i) * gap)
		if t >= cfg.DurNs {
			break
		}
		active := start
		if t >= cfg.LeadInNs {
			active = start + int((t-cfg.LeadInNs)/cfg.StepNs) + 1
		}
		active = min(active, cfg.Models)
		if next >= active {
			next = 0
		}
		out = append(out, Arrival{AtNs: t, Model: int32(1 + next), SLONs: cfg.SLONs})
		next++
	}
	sortArrivals(out)
	return out, nil
}

// ActiveMajors returns how many major models a Ramp has active at time t (for plots and docs).
func (cfg RampConfig) ActiveMajors(t int64) int {
	a := max(cfg.StartActive, 1)
	if t >= cfg.LeadInNs {
		a += int((t-cfg.LeadInNs)/cfg.StepNs) + 1
	}
	return min(a, cfg.Models)
}
