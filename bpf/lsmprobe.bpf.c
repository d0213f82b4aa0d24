//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Probe for `hooks: auto`: BPF LSM is usable only if this program loads,
 * attaches and actually fires on an open from the probing process. A kernel
 * can list "bpf" in securityfs and still refuse (EPERM under a restricted
 * ftrace), so listing alone is not trusted.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 probe_tgid = 0;
__u64 fired = 0;

SEC("lsm/file_open")
int BPF_PROG(probe_file_open, struct file *file)
{
	if ((bpf_get_current_pid_tgid() >> 32) == probe_tgid)
		__sync_fetch_and_add(&fired, 1);
	return 0;
}
