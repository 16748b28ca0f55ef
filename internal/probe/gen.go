package probe

// Regenerating needs clang, llvm and libbpf-dev (Debian); `make generate` runs this. The
// generated bpf_bpfel.go and bpf_bpfel.o are committed, so building and testing do not.
//go:generate go tool bpf2go -tags linux -target bpfel -type episode -type thread_stats -type thread_state -cflags "-O2 -g -Wall -Werror" bpf probe.bpf.c -- -I.
