package model

import (
	"strings"
	"testing"
)

func TestOptimizeSpecializeTiny(t *testing.T) {
	g, err := Parse("tiny", tinyCNN().bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	o, err := Optimize(g)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(o)
	s, err := Specialize(o, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(s)
	var ops []string
	for _, n := range s.Nodes {
		ops = append(ops, n.Op)
	}
	if got := strings.Join(ops, " "); got != "Conv MaxPool Reshape Gemm" {
		t.Fatalf("ops %q\n%v", got, s)
	}
}
