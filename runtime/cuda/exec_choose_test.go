package cuda

import "testing"

func TestVariantSets(t *testing.T) {
	mk := func(algo, heur, meas int, pinned bool) *convPlan {
		return &convPlan{Algo: algo, WorkspaceBytes: int64(algo), heurAlgo: heur, heurWs: int64(heur), measAlgo: meas, measWs: int64(meas), pinned: pinned}
	}
	// Compiled kept the heuristic (measured under 5% faster): heuristic equals compiled.
	convs := []*convPlan{mk(1, 1, 6, false), mk(0, 0, 0, false)}
	s := variantSets(convs)
	if s[variantCompiled] == nil || s[variantHeuristic] != nil || s[variantMeasured] == nil {
		t.Fatalf("sets %v", s)
	}
	if got := s[variantMeasured].algo; got[0] != 6 || got[1] != 0 || s[variantMeasured].ws[0] != 6 {
		t.Errorf("measured set %v", got)
	}
	// Three different sets; a pinned conv keeps its compiled algorithm everywhere.
	convs = []*convPlan{mk(2, 1, 2, false), mk(1, 1, 6, false), mk(1, 0, 6, true)}
	s = variantSets(convs)
	for v, want := range [][]int{{2, 1, 1}, {1, 1, 1}, {2, 6, 1}} {
		if s[v] == nil || !equalInts(s[v].algo, want) {
			t.Fatalf("variant %s: got %+v, want %v", VariantNames[v], s[v], want)
		}
	}
	s[variantMeasured].apply(convs)
	if convs[1].Algo != 6 || convs[1].WorkspaceBytes != 6 || convs[2].Algo != 1 {
		t.Errorf("apply: %+v %+v", convs[1], convs[2])
	}
	// Nothing to choose: one set.
	s = variantSets([]*convPlan{mk(3, 3, 3, false)})
	if s[variantHeuristic] != nil || s[variantMeasured] != nil {
		t.Errorf("identical variants not merged: %v", s)
	}
}

func TestPickVariant(t *testing.T) {
	for _, c := range []struct {
		ns   [numVariants]int64
		want int
	}{
		{[numVariants]int64{-1, -1, -1}, variantCompiled},
		{[numVariants]int64{300, 200, 250}, variantHeuristic},
		{[numVariants]int64{300, -1, 250}, variantMeasured},
		{[numVariants]int64{-1, 200, 200}, variantHeuristic}, // tie: earlier
		{[numVariants]int64{200, 200, 199}, variantMeasured},
	} {
		if got := pickVariant(c.ns); got != c.want {
			t.Errorf("pickVariant(%v) = %s, want %s", c.ns, VariantNames[got], VariantNames[c.want])
		}
	}
}
