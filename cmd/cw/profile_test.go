package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
)

func TestProfileSummarize(t *testing.T) {
	d := make([]int64, 10000)
	for i := range d {
		d[i] = int64(1000 + i) // 1000..10999 ns
	}
	d[0] = 50000 // one outlier becomes the max and the p99.99
	r := summarize("m", 1, "cw", 0, d)
	if r.N != 10000 || r.P50 != 6.0 || r.Max != 50 || r.P9999 != 10.999 {
		t.Fatalf("summarize = %+v", r)
	}
	if got := pct([]int64{5}, 0.9999); got != 5 {
		t.Errorf("pct of one = %d", got)
	}
	if v, err := parseInts("1, 2,16,"); err != nil || !slices.Equal(v, []int{1, 2, 16}) {
		t.Errorf("parseInts = %v, %v", v, err)
	}
	for _, bad := range []string{"x", "-1", "1,a"} {
		if _, err := parseInts(bad); err == nil {
			t.Errorf("parseInts(%q) succeeded", bad)
		}
	}
}

// Bad flags are errors naming the fix, before any GPU is touched.
func TestProfileFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "-zoo is required"},
		{[]string{"-zoo", "x", "-batches", "a"}, "-batches"},
		{[]string{"-zoo", "x", "-runs", "0"}, "must be >= 1"},
		{[]string{"-zoo", "x", "-gaps-ms", "1,q"}, "-gaps-ms"},
	} {
		var out, errb bytes.Buffer
		err := runToolsProfile(context.Background(), c.args, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error containing %q", c.args, err, c.want)
		}
	}
}
