package bench

import (
	"fmt"
	"image/color"
	"maps"
	"path/filepath"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Plots writes the run's plots into dir, each as PNG and SVG: latency_cdf, goodput (throughput
// and goodput per second), latency (p50/p99/max per second), batch_sizes, and cold_starts (LOADs
// per second, when known). It returns the files written.
func (r *Result) Plots(dir string, s *Summary) ([]string, error) {
	type fig struct {
		name string
		p    *plot.Plot
	}
	var figs []fig
	secs := max(1, int(r.DurNs/1e9)) // whole seconds; a last partial second would look like a drop
	ok := make([]float64, secs)
	good := make([]float64, secs)
	hs := make([]Histogram, secs)
	for i := range r.Records {
		rec := &r.Records[i]
		if rec.Outcome != Answered || rec.Status != 0 {
			continue
		}
		k := int(rec.DoneNs / 1e9)
		if k < 0 || k >= secs {
			continue
		}
		ok[k]++
		if slo := r.slo(rec); slo <= 0 || rec.LatencyNs() <= slo {
			good[k]++
		}
		hs[k].Record(rec.LatencyNs())
	}

	cdf := plot.New()
	cdf.Title.Text = "Latency CDF (OK answers, from scheduled send)"
	cdf.X.Label.Text = "latency (ms)"
	cdf.Y.Label.Text = "fraction of requests"
	var pts plotter.XYs
	s.Hist.CDF(func(v int64, f float64) { pts = append(pts, plotter.XY{X: float64(v) / 1e6, Y: f}) })
	if len(pts) > 0 {
		if err := addLine(cdf, "", pts, 0); err != nil {
			return nil, err
		}
	}
	figs = append(figs, fig{"latency_cdf", cdf})

	gp := plot.New()
	gp.Title.Text = "Throughput and goodput"
	gp.X.Label.Text = "time (s)"
	gp.Y.Label.Text = "requests/s"
	gp.Y.Min = 0
	if err := addLine(gp, "throughput (OK)", series(ok), 0); err != nil {
		return nil, err
	}
	if err := addLine(gp, "goodput (within SLO)", series(good), 1); err != nil {
		return nil, err
	}
	figs = append(figs, fig{"goodput", gp})

	lp := plot.New()
	lp.Title.Text = "Latency over time"
	lp.X.Label.Text = "time (s)"
	lp.Y.Label.Text = "latency (ms)"
	for i, q := range []float64{0.5, 0.99, 1} {
		v := make([]float64, secs)
		for k := range hs {
			v[k] = float64(hs[k].Quantile(q)) / 1e6
		}
		name := "p" + strconv.FormatFloat(100*q, 'g', -1, 64)
		if q == 1 {
			name = "max"
		}
		if err := addLine(lp, name, series(v), i); err != nil {
			return nil, err
		}
	}
	figs = append(figs, fig{"latency", lp})

	bp := plot.New()
	bp.Title.Text = "Batch sizes (share of OK requests)"
	bp.Y.Label.Text = "share"
	keys := slices.Sorted(maps.Keys(s.BatchMix))
	vals := make(plotter.Values, len(keys))
	names := make([]string, len(keys))
	for i, k := range keys {
		vals[i] = float64(s.BatchMix[k]) / float64(max(s.OK, 1))
		names[i] = strconv.Itoa(int(k))
	}
	if len(vals) > 0 {
		bars, err := plotter.NewBarChart(vals, vg.Points(20))
		if err != nil {
			return nil, fmt.Errorf("cannot plot batch sizes: %w", err)
		}
		bp.Add(bars)
		bp.NominalX(names...)
	}
	figs = append(figs, fig{"batch_sizes", bp})

	if r.Loads != nil {
		cs := make([]float64, secs)
		for _, t := range r.Loads {
			if k := int(t / 1e9); k >= 0 && k < secs {
				cs[k]++
			}
		}
		cp := plot.New()
		cp.Title.Text = "Cold starts (LOADs per second)"
		cp.X.Label.Text = "time (s)"
		cp.Y.Label.Text = "LOADs/s"
		if err := addLine(cp, "", series(cs), 2); err != nil {
			return nil, err
		}
		figs = append(figs, fig{"cold_starts", cp})
	}

	var files []string
	for _, f := range figs {
		for _, ext := range []string{".png", ".svg"} {
			path := filepath.Join(dir, f.name+ext)
			if err := f.p.Save(7*vg.Inch, 4*vg.Inch, path); err != nil {
				return files, fmt.Errorf("cannot save plot %s: %w", path, err)
			}
			files = append(files, path)
		}
	}
	return files, nil
}

var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 255}, color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 255},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 255},
}

func series(v []float64) plotter.XYs {
	xy := make(plotter.XYs, len(v))
	for i, y := range v {
		xy[i] = plotter.XY{X: float64(i), Y: y}
	}
	return xy
}

func addLine(p *plot.Plot, name string, pts plotter.XYs, c int) error {
	l, err := plotter.NewLine(pts)
	if err != nil {
		return fmt.Errorf("cannot plot %q: %w", name, err)
	}
	l.Color = palette[c%len(palette)]
	p.Add(l)
	if name != "" {
		p.Legend.Add(name, l)
		p.Legend.Top = true
	}
	return nil
}
