//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * agentwatch LSM backend: file opens and connects of session processes seen
 * by security_file_open / security_socket_connect, which every path to a
 * file or a socket goes through whatever the syscall, and which can deny.
 * Process lifecycle (exec/fork/exit) stays with the tp_btf programs of
 * agentwatch.bpf.c; this object shares their maps (loaded with
 * MapReplacements), so there is one `tracked` map and one ring buffer.
 *
 * The records are the tracepoint backend's: EV_OPEN with syscall
 * SYS_LSM_FILE_OPEN, EV_CONNECT, plus EV_ENFORCE when a rule matches. The hook
 * runs before the open/connect completes, so `ret` is the verdict (0 or
 * -EPERM), not an fd or the connect result.
 */
#include "enforce.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define O_LARGEFILE_  0100000 /* x86: the kernel adds it on 64-bit; callers did not pass it */
#define FMODE_EXEC_   0x20    /* __FMODE_EXEC in f_flags: exec's own open of the binary */

/* x86_64 syscall numbers whose arguments give the caller's open flags. */
#define NR_OPEN    2
#define NR_CREAT   85
#define NR_OPENAT  257
#define NR_OPENAT2 437

/*
 * The caller's open flags and mode, read from the syscall's registers, so the
 * flags match what the tracepoint backend reports (f_flags has lost
 * O_CLOEXEC and gained O_LARGEFILE). Opens not from an open syscall
 * (io_uring, kernel-internal) fall back to f_flags.
 */
static __always_inline void caller_flags(struct task_struct *t, struct file *file, __u32 *flags, __u32 *mode)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(t);
	long nr = BPF_CORE_READ(regs, orig_ax);
	switch (nr) {
	case NR_OPENAT:
		*flags = BPF_CORE_READ(regs, dx);
		*mode = BPF_CORE_READ(regs, r10);
		return;
	case NR_OPEN:
		*flags = BPF_CORE_READ(regs, si);
		*mode = BPF_CORE_READ(regs, dx);
		return;
	case NR_CREAT:
		*flags = 0100 | 01 | 01000;
		*mode = BPF_CORE_READ(regs, si);
		return;
	case NR_OPENAT2: {
		struct open_how how = {};
		bpf_probe_read_user(&how, sizeof(how), (void *)BPF_CORE_READ(regs, dx));
		*flags = how.flags;
		*mode = how.mode;
		return;
	}
	}
	*flags = BPF_CORE_READ(file, f_flags) & ~(O_LARGEFILE_ | FMODE_EXEC_);
	*mode = 0;
}

SEC("lsm/file_open")
int BPF_PROG(lsm_file_open, struct file *file, int ret)
{
	if (ret)
		return ret; /* an earlier BPF LSM program denied it */
	if (!current_tracked())
		return 0;
	if (BPF_CORE_READ(file, f_flags) & FMODE_EXEC_)
		return 0; /* the exec event reports the binary */

	__u32 zero = 0;
	struct ev_buf *ev = bpf_map_lookup_elem(&ev_scratch, &zero);
	struct path_buf *pb = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!ev || !pb)
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	__u8 trunc = 0, noise = 0;
	struct path fp = BPF_CORE_READ(file, f_path);
	__u32 start = walk_abs(&fp, pb, &trunc, &noise);
	__u32 end = PATH_END;

	struct file_id id = {};
	inode_id(BPF_CORE_READ(file, f_inode), &id);
	__u16 flags = trunc ? F_PATH_TRUNCATED : 0;
	__u32 target = 0;
	if (id_sensitive(&id))
		flags |= F_ID_SENSITIVE;
	else if ((target = proc_other(file)))
		flags |= F_PROC_OTHER;

	int verdict = 0;
	if (cfg_enforce != ENF_OFF && !trunc) {
		long rule = deny_open_rule(pb, start, end);
		if (rule >= 0) {
			__u8 act;
			verdict = enforce_action(1, &act);
			emit_enforce(t, rule, ENF_WHAT_OPEN, act, 0, 0, NULL, pb, start, end, 0);
		}
	}
	/* a denied open, and a file known by what it is, are reported even
	 * under a noise prefix */
	int known = verdict || (flags & (F_ID_SENSITIVE | F_PROC_OTHER));
	if (!known && (noise || prefix_is_noise(pb, start, end))) {
		count(&stats, STAT_NOISE_DROPPED);
		return 0;
	}
	__u32 oflags = 0, omode = 0;
	caller_flags(t, file, &oflags, &omode);
	/* The loader's and libc's fixed reads, as on the tracepoint backend.
	 * Failed and O_PATH opens never reach this hook. */
	struct prefix_key k = {};
	if (!known && open_reads_only(oflags) && open_class_of(&k, pb, start, end) == OPEN_CLS_NOISE) {
		count(&stats, STAT_NOISE_FILE);
		return 0;
	}

	struct open_event *e = (struct open_event *)ev->raw;
	char *data = ev->raw + sizeof(*e);
	fill_hdr(&e->hdr, EV_OPEN, t);
	e->hdr.flags = flags;
	e->ret = verdict;
	e->open_flags = oflags;
	e->mode = omode;
	e->syscall = SYS_LSM_FILE_OPEN;
	e->ino = id.ino;
	e->dev = id.dev;
	e->target = target;
	__u32 len = copy_path(data, pb, start, end);
	e->path_len = len;
	emit(e, sizeof(*e) + len, EV_OPEN);
	return verdict;
}

#define AF_INET_  2
#define AF_INET6_ 10

SEC("lsm/socket_connect")
int BPF_PROG(lsm_socket_connect, struct socket *sock, struct sockaddr *address, int addrlen, int ret)
{
	if (ret)
		return ret;
	if (!current_tracked())
		return 0;
	__u16 family = 0;
	__u16 port = 0;
	__u8 addr[16] = {};
	bpf_probe_read_kernel(&family, sizeof(family), &address->sa_family);
	if (family == AF_INET_) {
		struct sockaddr_in sa = {};
		bpf_probe_read_kernel(&sa, sizeof(sa), address);
		port = bpf_ntohs(sa.sin_port);
		__builtin_memcpy(addr, &sa.sin_addr, 4);
	} else if (family == AF_INET6_) {
		struct sockaddr_in6 sa = {};
		bpf_probe_read_kernel(&sa, sizeof(sa), address);
		port = bpf_ntohs(sa.sin6_port);
		__builtin_memcpy(addr, &sa.sin6_addr, 16);
	} else {
		return 0; /* unix, netlink, ...: not egress */
	}
	struct task_struct *t = bpf_get_current_task_btf();

	int verdict = 0;
	if (cfg_enforce != ENF_OFF) {
		long rule = connect_rule(family, addr, port);
		if (rule != -1) {
			__u8 act;
			verdict = enforce_action(1, &act);
			emit_enforce(t, (__u32)rule, ENF_WHAT_CONNECT, act, family, port, addr, NULL, 0, 0, 0);
		}
	}

	/* the cgroup connect program, which runs next, leaves this one to us */
	if (!verdict) {
		__u64 id = bpf_get_current_pid_tgid();
		struct inflight mark = {.sock_type = INFLIGHT_LSM_MARK, .family = family, .port = port};
		__builtin_memcpy(mark.addr, addr, 16);
		bpf_map_update_elem(&inflight, &id, &mark, BPF_ANY);
	}

	struct connect_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(&drops, EV_CONNECT);
		return verdict;
	}
	fill_hdr(&e->hdr, EV_CONNECT, t);
	e->ret = verdict;
	e->family = family;
	e->port = port;
	__builtin_memcpy(e->addr, addr, 16);
	e->sock_type = BPF_CORE_READ(sock, type);
	e->_pad = 0;
	e->_pad2 = 0;
	bpf_ringbuf_submit(e, 0);
	return verdict;
}
