package alloc

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// zoo reads testdata/zoo/*.txt: the weight tensors of the torchvision zoo, as gen.py writes
// them from the architectures (checked there against the parameter counts in
// models-and-gpu.md).
func zoo(t testing.TB) map[string][]Tensor {
	t.Helper()
	files, err := filepath.Glob("testdata/zoo/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no zoo tensor lists: %v", err)
	}
	z := map[string][]Tensor{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		var ts []Tensor
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			l := sc.Text()
			if l == "" || l[0] == '#' {
				continue
			}
			name, size, ok := strings.Cut(l, " ")
			n, err := strconv.ParseInt(size, 10, 64)
			if !ok || err != nil {
				t.Fatalf("%s: bad line %q", f, l)
			}
			ts = append(ts, Tensor{Name: name, Bytes: n})
		}
		fh.Close()
		z[strings.TrimSuffix(filepath.Base(f), ".txt")] = ts
	}
	return z
}

func sortedNames(z map[string][]Tensor) []string {
	var names []string
	for n := range z {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// zooStats lays out every zoo model at one page size.
type zooStats struct {
	bytes, pageBytes, boundBytes int64 // tensor bytes, bytes of the pages used, of ceil(bytes/page) pages
	pages, runs                  int
}

func layoutZoo(t testing.TB, z map[string][]Tensor, pageSize int64, packed bool, print func(string, *Layout)) zooStats {
	var s zooStats
	for _, name := range sortedNames(z) {
		ts := z[name]
		newLayout := NewLayout
		if packed {
			newLayout = NewPackedLayout
		}
		l, err := newLayout(pageSize, ts)
		if err != nil {
			t.Fatalf("%s at %d: %v", name, pageSize, err)
		}
		if err := l.Check(ts); err != nil {
			t.Fatalf("%s at %d: %v", name, pageSize, err)
		}
		bound := (l.Bytes + pageSize - 1) / pageSize
		if packed && int64(l.Pages) > bound+1 {
			// Only alignment padding separates a packed layout from the bound.
			t.Errorf("%s at %d packed: %d pages, lower bound %d", name, pageSize, l.Pages, bound)
		}
		s.bytes += l.Bytes
		s.pageBytes += int64(l.Pages) * pageSize
		s.boundBytes += bound * pageSize
		s.pages += l.Pages
		s.runs += len(l.Runs)
		if print != nil {
			print(name, l)
		}
	}
	return s
}

type zooCase struct {
	page   int64
	packed bool
}

func (c zooCase) String() string {
	if c.packed {
		return fmt.Sprintf("page=%dMiB/packed", c.page>>20)
	}
	return fmt.Sprintf("page=%dMiB", c.page>>20)
}

var zooCases = []zooCase{{2 << 20, false}, {4 << 20, false}, {16 << 20, false}, {64 << 20, false},
	{2 << 20, true}, {4 << 20, true}, {16 << 20, true}}

// TestZooLayout lays out the whole zoo at several page sizes; -v prints the table that
// docs/alloc.md quotes.
func TestZooLayout(t *testing.T) {
	z := zoo(t)
	if len(z) < 30 {
		t.Fatalf("only %d zoo models", len(z))
	}
	for _, c := range zooCases {
		ps := c.page
		var rows strings.Builder
		s := layoutZoo(t, z, ps, c.packed, func(name string, l *Layout) {
			fmt.Fprintf(&rows, "  %-20s %9.1f MB %4d pages %2d runs  waste %6.2f%%\n", name, float64(l.Bytes)/1e6, l.Pages, len(l.Runs), 100*float64(l.Waste)/float64(int64(l.Pages)*ps))
		})
		t.Logf("%s: zoo %.1f MB in %d pages, %d runs; waste %.2f%% of page bytes (%.2f%% is the last-page bound, %.3f%% from packing)\n%s",
			c, float64(s.bytes)/1e6, s.pages, s.runs,
			100*float64(s.pageBytes-s.bytes)/float64(s.pageBytes),
			100*float64(s.boundBytes-s.bytes)/float64(s.pageBytes),
			100*float64(s.pageBytes-s.boundBytes)/float64(s.pageBytes), rows.String())
	}
}

// BenchmarkZooLayout lays out the whole zoo (32 models) per iteration and reports pages and
// waste at each page size, paged (no tensor spans a page) and packed.
func BenchmarkZooLayout(b *testing.B) {
	z := zoo(b)
	for _, c := range zooCases {
		ps := c.page
		b.Run(c.String(), func(b *testing.B) {
			var s zooStats
			b.ReportAllocs()
			for b.Loop() {
				s = layoutZoo(b, z, ps, c.packed, nil)
			}
			b.ReportMetric(float64(s.pages), "pages")
			b.ReportMetric(100*float64(s.pageBytes-s.bytes)/float64(s.pageBytes), "waste-%")
			b.ReportMetric(100*float64(s.pageBytes-s.boundBytes)/float64(s.pageBytes), "packing-waste-%")
		})
	}
}
