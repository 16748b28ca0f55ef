//go:build ignore

/* vmlinux_min.h: the few kernel types probe.bpf.c reads, instead of a 5 MB vmlinux.h.
 *
 * Every struct carries preserve_access_index, so clang emits CO-RE relocations and the loader
 * (cilium/ebpf) resolves each field's offset against the running kernel's BTF
 * (/sys/kernel/btf/vmlinux); the layouts below need only the right names and types, not the
 * right offsets. Regenerate the full header with
 *   bpftool btf dump file /sys/kernel/btf/vmlinux format c
 * if a new field is needed, and copy the field here.
 */
#ifndef __VMLINUX_MIN_H__
#define __VMLINUX_MIN_H__

typedef unsigned char __u8;
typedef short __s16;
typedef unsigned short __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long __s64;
typedef unsigned long long __u64;
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s32 s32;
typedef __s64 s64;
typedef _Bool bool;
typedef int pid_t;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;

enum {
	false = 0,
	true = 1,
};

/* From include/uapi/linux/bpf.h (stable UAPI values). */
enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_RINGBUF = 27,
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
	BPF_EXIST = 2,
};

/* BPF_FUNC_ringbuf_submit flags. */
enum {
	BPF_RB_NO_WAKEUP = 1,
	BPF_RB_FORCE_WAKEUP = 2,
};

struct task_struct {
	unsigned int __state;
	pid_t pid;
	pid_t tgid;
	char comm[16];
} __attribute__((preserve_access_index));

struct irqaction {
	const char *name;
} __attribute__((preserve_access_index));

struct pt_regs;

#endif /* __VMLINUX_MIN_H__ */
