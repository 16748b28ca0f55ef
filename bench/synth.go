package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// sampleTotalQuantiles is the quantile function of per-function invocations in 480 minutes of the
// shipped Azure 2019 sample (traces/azure-functions-2019/README.md: min 1, 13.4 % at 1, 33.4 % at
// ≤ 10, median 48, 66.8 % ≤ 100, p90 958.1, 91.2 % ≤ 1,000, 96.8 % ≤ 10,000, p99 59,241.9,
// 99.4 % ≤ 100,000, max 1,915,521). Synth draws a function's mean rate by log-linear
// interpolation between these points.
var sampleTotalQuantiles = [][2]float64{
	{0, 1}, {0.134, 1}, {0.334, 10}, {0.5, 48}, {0.668, 100}, {0.9, 958.1}, {0.912, 1000},
	{0.968, 10000}, {0.99, 59241.9}, {0.994, 100000}, {1, 1915521},
}

const sampleWindowMinutes = 480

func sampleTotal(u float64) float64 {
	q := sampleTotalQuantiles
	for i := 1; i < len(q); i++ {
		if u <= q[i][0] {
			f := (u - q[i-1][0]) / (q[i][0] - q[i-1][0])
			return math.Exp(math.Log(q[i-1][1]) + f*(math.Log(q[i][1])-math.Log(q[i-1][1])))
		}
	}
	return q[len(q)-1][1]
}

// SynthConfig configures an Azure-like synthetic trace.
type SynthConfig struct {
	Functions   int
	StartMinute int // minute of the day of the first column (1-based, as the trace's names); 0: 480
	Minutes     int
	// Diurnal is the amplitude of the daily cycle (0..1): rates are multiplied by
	// 1 + Diurnal·cos(2π(minute − peak)/1440) with the peak at 14:00. The shipped sample's hourly
	// totals vary by about ±5 % across 08:00–16:00.
	Diurnal float64
	// BurstyFrac of functions are bursty: ON for runs of mean BurstMinutes, with duty cycle
	// BurstDuty, and silent otherwise, at the same mean rate (the sample's per-minute CV has p90
	// 2.4 among functions with ≥ 1 invocation per minute; duty 0.2 gives CV ≈ 2).
	BurstyFrac, BurstDuty, BurstMinutes float64
	Seed                                uint64
}

// DefaultSynth returns the calibrated defaults for n functions over minutes.
func DefaultSynth(n, minutes int, seed uint64) SynthConfig {
	return SynthConfig{Functions: n, StartMinute: 480, Minutes: minutes, Diurnal: 0.1,
		BurstyFrac: 0.15, BurstDuty: 0.2, BurstMinutes: 5, Seed: seed}
}

// Synth makes an Azure-like trace: per function a mean rate drawn from the shipped sample's
// heavy-tailed distribution of per-function totals, a diurnal shape, bursty on/off functions, and
// Poisson per-minute counts. Any size; the same seed gives the same trace.
func Synth(cfg SynthConfig) (*Trace, error) {
	if cfg.Functions < 1 || cfg.Functions > MaxTraceFunctions || cfg.Minutes < 1 || cfg.Minutes > MaxTraceMinutes {
		return nil, fmt.Errorf("cannot synthesise a trace of %d functions × %d minutes; need 1..%d functions and 1..%d minutes",
			cfg.Functions, cfg.Minutes, MaxTraceFunctions, MaxTraceMinutes)
	}
	if cfg.Diurnal < 0 || cfg.Diurnal >= 1 || cfg.BurstyFrac < 0 || cfg.BurstyFrac > 1 ||
		(cfg.BurstyFrac > 0 && (cfg.BurstDuty <= 0 || cfg.BurstDuty > 1 || cfg.BurstMinutes < 1)) {
		return nil, fmt.Errorf("cannot synthesise a trace: diurnal %v (0..1), bursty fraction %v (0..1), duty %v (0..1], burst minutes %v (>= 1)",
			cfg.Diurnal, cfg.BurstyFrac, cfg.BurstDuty, cfg.BurstMinutes)
	}
	start := cfg.StartMinute
	if start == 0 {
		start = 480
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5e7))
	tr := &Trace{FirstMinute: start, Minutes: cfg.Minutes, Functions: make([]Function, cfg.Functions)}
	diurnal := make([]float64, cfg.Minutes)
	for k := range diurnal {
		diurnal[k] = 1 + cfg.Diurnal*math.Cos(2*math.Pi*float64(start+k-14*60)/1440)
	}
	for i := range tr.Functions {
		f := &tr.Functions[i]
		f.Owner, f.App, f.Name, f.Trigger = fmt.Sprintf("o%d", i), fmt.Sprintf("a%d", i), fmt.Sprintf("f%d", i), "synthetic"
		f.Counts = make([]uint32, cfg.Minutes)
		rate := sampleTotal(rng.Float64()) / sampleWindowMinutes // per minute
		bursty := rng.Float64() < cfg.BurstyFrac
		on := true
		if bursty {
			on = rng.Float64() < cfg.BurstDuty
			rate /= cfg.BurstDuty
		}
		// Mean run lengths give the duty cycle: ON runs of BurstMinutes, OFF runs of
		// BurstMinutes·(1−d)/d, as geometric runs.
		pOff := 1 / cfg.BurstMinutes
		pOn := pOff * cfg.BurstDuty / math.Max(1-cfg.BurstDuty, 1e-9)
		for k := range cfg.Minutes {
			if bursty {
				if on && rng.Float64() < pOff {
					on = false
				} else if !on && rng.Float64() < pOn {
					on = true
				}
				if !on {
					continue
				}
			}
			n := poisson(rng, rate*diurnal[k])
			f.Counts[k] = uint32(min(n, maxMinuteCount-1))
			f.Total += uint64(f.Counts[k])
		}
	}
	return tr, nil
}

// poisson draws a Poisson variate: Knuth's product method for small means, a rounded normal
// approximation above 50 (error far below the trace's own noise).
func poisson(rng *rand.Rand, mean float64) int64 {
	if mean <= 0 {
		return 0
	}
	if mean > 50 {
		return max(0, int64(math.Round(mean+math.Sqrt(mean)*rng.NormFloat64())))
	}
	l, k, p := math.Exp(-mean), int64(0), 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}
