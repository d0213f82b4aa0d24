//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * agentwatch tracepoint backend.
 *
 * Only processes in an agent session produce events. Membership lives in the
 * `tracked` map: a matched exec adds the process, fork inherits it, exit
 * removes it. Everything else costs one hash lookup and returns. File opens
 * under noise prefixes/directories are dropped here, before the ring buffer.
 */
#include "enforce.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define MAX_CGROUP_DEPTH 16
#define DIR_KEY_LEN 32

const volatile __u8 cfg_match_all_execs = 0;
const volatile __u8 cfg_cgroup_match = 0;

enum exec_action {
	ACT_NONE = 0,
	ACT_START = 1,     /* matched in the kernel: the process starts a session */
	ACT_CANDIDATE = 2, /* track from now on, userspace decides */
};

/* Executable basenames -> enum exec_action. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct name_key);
	__type(value, __u8);
} exec_names SEC(".maps");

/*
 * (grandparent dir, parent dir) of the resolved image -> enum exec_action.
 * Installers that name the binary by its version (claude's
 * ~/.local/share/claude/versions/2.1.197) give neither comm nor the image a
 * stable name; the directories they put it in are stable.
 */
struct dir_key {
	char gp[DIR_KEY_LEN];
	char p[DIR_KEY_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct dir_key);
	__type(value, __u8);
} exec_dirs SEC(".maps");

/* cgroup v2 ids of matcher directories -> enum exec_action. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u8);
} exec_cgroups SEC(".maps");

/*
 * The kernel sets comm to the basename of the exec'd file (first 15 bytes)
 * before this tracepoint fires, so comm is the exec matcher's key. Longer
 * basenames are stored truncated as candidates and verified in userspace.
 */
static __always_inline __u8 match_comm(void)
{
	struct name_key k = {};
	bpf_get_current_comm(k.name, 16);
	__u8 *act = bpf_map_lookup_elem(&exec_names, &k);
	return act ? *act : ACT_NONE;
}

/*
 * The image as resolved: a symlink or hard link with another name (npm's
 * .bin/claude -> claude.exe, a user's alias) still runs the agent's file.
 * Costs two map lookups per exec outside a session, nothing per syscall.
 */
static __always_inline __u8 match_image(struct task_struct *p)
{
	struct dentry *d = BPF_CORE_READ(p, mm, exe_file, f_path.dentry);
	if (!d)
		return ACT_NONE;
	struct name_key k = {};
	const unsigned char *n = BPF_CORE_READ(d, d_name.name);
	/* keyed like comm: the first 15 bytes */
	bpf_probe_read_kernel_str(k.name, 16, n);
	__u8 *act = bpf_map_lookup_elem(&exec_names, &k);
	if (act)
		return *act;
	struct dir_key dk = {};
	struct dentry *par = BPF_CORE_READ(d, d_parent);
	struct dentry *gp = BPF_CORE_READ(par, d_parent);
	if (!par || par == d || !gp || gp == par)
		return ACT_NONE;
	bpf_probe_read_kernel_str(dk.p, sizeof(dk.p), BPF_CORE_READ(par, d_name.name));
	bpf_probe_read_kernel_str(dk.gp, sizeof(dk.gp), BPF_CORE_READ(gp, d_name.name));
	act = bpf_map_lookup_elem(&exec_dirs, &dk);
	return act ? *act : ACT_NONE;
}

static __always_inline __u8 match_cgroup(void)
{
	if (!cfg_cgroup_match)
		return ACT_NONE;
	for (int lvl = 0; lvl < MAX_CGROUP_DEPTH; lvl++) {
		__u64 id = bpf_get_current_ancestor_cgroup_id(lvl);
		if (!id)
			break;
		__u8 *act = bpf_map_lookup_elem(&exec_cgroups, &id);
		if (act)
			return *act;
	}
	return ACT_NONE;
}


#define MAX_HOME      256
#define MAX_ENV_STEPS 512

struct env_scan {
	unsigned long cur, end;
	__u32 off;  /* where in the record's data the value goes */
	__u32 len;  /* of the value found */
	__u8 mid;   /* cur is inside a string longer than MAX_HOME */
};

/*
 * One environment string per step, read straight into the record's last
 * slot: a later string overwrites a non-HOME one, so no scratch is needed.
 */
static long env_step(__u32 i, void *vctx)
{
	struct env_scan *c = vctx;
	__u32 zero = 0;
	if (c->cur >= c->end)
		return 1;
	struct ev_buf *ev = bpf_map_lookup_elem(&ev_scratch, &zero);
	if (!ev)
		return 1;
	char *dst = ev->raw + sizeof(struct exec_event) + (c->off & EV_DATA_MASK);
	long n = bpf_probe_read_user_str(dst, MAX_HOME, (void *)c->cur);
	if (n <= 0)
		return 1;
	if (!c->mid && n > 5 && dst[0] == 'H' && dst[1] == 'O' && dst[2] == 'M' && dst[3] == 'E' && dst[4] == '=') {
		n = bpf_probe_read_user_str(dst, MAX_HOME, (void *)(c->cur + 5));
		c->len = n > 0 ? n - 1 : 0;
		return 1;
	}
	if (n == MAX_HOME) {
		c->mid = 1;
		c->cur += MAX_HOME - 1;
	} else {
		c->mid = 0;
		c->cur += n;
	}
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);
	struct tracked *st = lookup_tracked(tgid);
	__u16 flags = 0;

	if (!st) {
		__u8 act = match_comm();
		if (act == ACT_NONE)
			act = match_image(p);
		if (act == ACT_NONE)
			act = match_cgroup();
		if (act == ACT_NONE && cfg_match_all_execs)
			act = ACT_CANDIDATE;
		if (act == ACT_NONE)
			return 0;
		struct tracked nt = {.start = leader_start(p), .flags = act == ACT_CANDIDATE ? TRACKED_PENDING : 0};
		if (bpf_map_update_elem(&tracked, &tgid, &nt, BPF_ANY)) {
			count(&stats, STAT_TRACKED_FULL);
			return 0;
		}
		flags = act == ACT_START ? F_EXEC_MATCHED : F_EXEC_CANDIDATE;
	} else if (st->flags & TRACKED_PENDING) {
		flags = F_EXEC_CANDIDATE;
	}

	__u32 zero = 0;
	struct ev_buf *ev = bpf_map_lookup_elem(&ev_scratch, &zero);
	struct path_buf *pb = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!ev || !pb)
		return 0;
	struct exec_event *e = (struct exec_event *)ev->raw;
	char *data = ev->raw + sizeof(*e);
	fill_hdr(&e->hdr, EV_EXEC, p);
	struct task_struct *parent = BPF_CORE_READ(p, real_parent);
	e->ppid = BPF_CORE_READ(parent, tgid);
	e->pstart = leader_start(parent);
	e->uid = BPF_CORE_READ(p, cred, uid.val);
	e->euid = BPF_CORE_READ(p, cred, euid.val);

	__u8 trunc = 0, noise = 0;
	__u32 off = 0;

	/* exe path, from the mm's exe_file: canonical, symlinks resolved */
	struct file *exe = BPF_CORE_READ(p, mm, exe_file);
	__u32 len = 0;
	if (exe) {
		struct path fp = BPF_CORE_READ(exe, f_path);
		__u32 start = walk_abs(&fp, pb, &trunc, &noise);
		len = append_path(data, off, pb, start, PATH_END, &trunc);
	}
	e->exe_len = len;
	off += len;

	/* the name as invoked (may be relative, or a symlink) */
	const char *fname = BPF_CORE_READ(bprm, filename);
	long n = bpf_probe_read_kernel_str(&data[off & EV_DATA_MASK], MAX_FILENAME, fname);
	len = n > 0 ? n - 1 : 0;
	e->filename_len = len;
	off += len;

	/* argv, straight from the new image's stack */
	unsigned long as = BPF_CORE_READ(p, mm, arg_start);
	unsigned long ae = BPF_CORE_READ(p, mm, arg_end);
	/* 64-bit on purpose: a 32-bit copy gets checked while the other is used */
	__u64 alen = ae > as ? ae - as : 0;
	__u64 max = cfg_max_args;
	if (max > MAX_ARGS_BYTES)
		max = MAX_ARGS_BYTES;
	if (alen > max) {
		alen = max;
		flags |= F_ARGS_TRUNCATED;
	}
	barrier_var(alen);
	if (alen > MAX_ARGS_BYTES)
		return 0;
	if (alen && bpf_probe_read_user(&data[off & EV_DATA_MASK], alen, (void *)as))
		alen = 0;
	len = alen;
	e->args_len = len;
	off += len;

	/* cwd */
	struct path pwd = BPF_CORE_READ(p, fs, pwd);
	__u32 start = walk_abs(&pwd, pb, &trunc, &noise);
	len = append_path(data, off, pb, start, PATH_END, &trunc);
	e->cwd_len = len;
	off += len;

	/*
	 * HOME as of this exec: what `~` means to the program, which may not be
	 * the uid's passwd home (sandboxes, CI, containers). Bounded scan.
	 */
	struct env_scan es = {
		.cur = BPF_CORE_READ(p, mm, env_start),
		.end = BPF_CORE_READ(p, mm, env_end),
		.off = off,
	};
	e->home_len = 0;
	e->_pad = 0;
	if (off <= EV_DATA_MASK) {
		bpf_loop(MAX_ENV_STEPS, env_step, &es, 0);
		if (es.len < MAX_HOME) {
			e->home_len = es.len;
			off += es.len;
		}
	}

	if (trunc)
		flags |= F_PATH_TRUNCATED;
	e->hdr.flags = flags;
	__u64 size = sizeof(*e) + (off & EV_DATA_MASK);
	if (size > sizeof(*ev))
		return 0;
	emit(e, size, EV_EXEC);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_fork, struct task_struct *parent, struct task_struct *child)
{
	/* threads share the parent's membership through its tgid */
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0;
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	struct tracked *st = lookup_tracked(ptgid);
	if (!st)
		return 0;
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	struct tracked nt = {.start = BPF_CORE_READ(child, start_boottime), .flags = st->flags};
	if (bpf_map_update_elem(&tracked, &ctgid, &nt, BPF_ANY)) {
		count(&stats, STAT_TRACKED_FULL);
		return 0;
	}
	struct fork_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(&drops, EV_FORK);
		return 0;
	}
	fill_hdr(&e->hdr, EV_FORK, child);
	/* the child is not running yet; its start time is its own */
	e->hdr.start = nt.start;
	e->ppid = ptgid;
	e->_pad = 0;
	e->pstart = leader_start(parent);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_exit, struct task_struct *p)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);
	if (!lookup_tracked(tgid))
		return 0;
	/* only the last thread of the group ends the process */
	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	struct exit_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e) {
		fill_hdr(&e->hdr, EV_EXIT, p);
		e->hdr.pid = tgid;
		e->exit_code = BPF_CORE_READ(p, exit_code);
		e->_pad = 0;
		bpf_ringbuf_submit(e, 0);
	} else {
		count(&drops, EV_EXIT);
	}
	bpf_map_delete_elem(&tracked, &tgid);
	return 0;
}

/* ---- file opens ---- */

static __always_inline int stash_open(__u64 uptr, int dfd, __u32 flags, __u32 mode, __u16 sc)
{
	if (!current_tracked())
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	struct inflight in = {.uptr = uptr, .dfd = dfd, .flags = flags, .mode = mode, .syscall = sc};
	if (bpf_map_update_elem(&inflight, &id, &in, BPF_ANY))
		count(&stats, STAT_INFLIGHT_FULL);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	return stash_open(ctx->args[1], (int)ctx->args[0], ctx->args[2], ctx->args[3], SYS_OPENAT);
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int enter_openat2(struct trace_event_raw_sys_enter *ctx)
{
	struct open_how how = {};
	if (!current_tracked())
		return 0;
	bpf_probe_read_user(&how, sizeof(how), (void *)ctx->args[2]);
	return stash_open(ctx->args[1], (int)ctx->args[0], how.flags, how.mode, SYS_OPENAT2);
}

SEC("tracepoint/syscalls/sys_enter_open")
int enter_open(struct trace_event_raw_sys_enter *ctx)
{
	return stash_open(ctx->args[0], AT_FDCWD_, ctx->args[1], ctx->args[2], SYS_OPEN);
}

SEC("tracepoint/syscalls/sys_enter_creat")
int enter_creat(struct trace_event_raw_sys_enter *ctx)
{
	/* creat(2) == open(O_CREAT|O_WRONLY|O_TRUNC) */
	return stash_open(ctx->args[0], AT_FDCWD_, 0100 | 01 | 01000, ctx->args[1], SYS_CREAT);
}

const volatile __u8 cfg_drop_failed_opens = 0;
const volatile __u8 cfg_drop_path_opens = 0;

#define O_PATH_ 010000000
/* Sensitive basename prefixes (".env", "credentials", "id_rsa"). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 256);
	__type(key, struct prefix_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} keep_names SEC(".maps");

static __always_inline int keep_name(struct prefix_key *k, const char *src, __u32 len)
{
	if (len > NAME_KEY_LEN)
		len = NAME_KEY_LEN;
	if (!len)
		return 0;
	/* bytes past len are ignored: the lookup only compares prefixlen bits */
	bpf_probe_read_kernel(k->data, NAME_KEY_LEN, src);
	k->prefixlen = len * 8;
	return bpf_map_lookup_elem(&keep_names, k) != NULL;
}

static __always_inline int finish_open(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct inflight *in = bpf_map_lookup_elem(&inflight, &id);
	if (!in)
		return 0;
	struct inflight a = *in;
	bpf_map_delete_elem(&inflight, &id);

	__u32 zero = 0;
	struct ev_buf *ev = bpf_map_lookup_elem(&ev_scratch, &zero);
	struct path_buf *pb = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!ev || !pb)
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	struct open_event *e = (struct open_event *)ev->raw;
	char *data = ev->raw + sizeof(*e);
	__s32 ret = ctx->ret;
	__u8 trunc = 0, noise = 0;
	__u16 flags = 0;
	__u32 start, end;
	__u32 base_at = 0, base_len = 0;
	struct dentry *dent = NULL;

	struct file *f = ret >= 0 ? fd_file(t, ret) : NULL;
	if (f) {
		/* success: the kernel's own view of what was opened */
		struct path fp = BPF_CORE_READ(f, f_path);
		dent = fp.dentry;
		start = walk_abs(&fp, pb, &trunc, &noise);
		end = PATH_END;
		/*
		 * Tracepoints cannot deny; `action: kill` kills at syscall exit,
		 * on the path the kernel resolved. The open has happened, but
		 * the signal is fatal before the caller runs again.
		 */
		if (cfg_enforce != ENF_OFF && !trunc) {
			long rule = deny_open_rule(pb, start, PATH_END);
			if (rule >= 0) {
				__u8 act;
				enforce_action(0, &act);
				emit_enforce(t, rule, ENF_WHAT_OPEN, act, 0, 0, NULL, pb, start, PATH_END);
			}
		}
	} else {
		/* failure: the caller's string, made absolute against cwd or dirfd */
		flags |= F_PATH_RAW;
		long n = bpf_probe_read_user_str(&pb->buf[RAW_AT], PATH_MAX_LEN - 1, (void *)a.uptr);
		if (n <= 1)
			return 0;
		end = RAW_AT + n - 1; /* excludes the NUL */
		if (pb->buf[RAW_AT] == '/') {
			start = RAW_AT;
		} else {
			struct path base = {};
			if (a.dfd == AT_FDCWD_) {
				base = BPF_CORE_READ(t, fs, pwd);
			} else {
				struct file *df = fd_file(t, a.dfd);
				if (!df)
					return 0;
				base = BPF_CORE_READ(df, f_path);
			}
			__u8 dnoise = 0;
			start = walk_path(&base, &trunc, &dnoise);
			noise |= dnoise;
			pb->buf[PATH_END] = '/';
		}
		struct scan_ctx sc = {.h = FNV_OFFSET, .len = n - 1};
		bpf_loop(PATH_MAX_LEN, scan_step, &sc, 0);
		noise |= sc.noise;
		base_at = RAW_AT + sc.last;
		base_len = sc.len > sc.last ? sc.len - sc.last : 0;
		if (sc.dotdot) {
			/* "/usr/lib/../../etc/shadow" must not hide behind a noise prefix */
			flags |= F_PATH_DOTDOT;
			noise = 0;
		}
	}
	if (!(flags & F_PATH_DOTDOT) && (noise || prefix_is_noise(pb, start, end))) {
		count(&stats, STAT_NOISE_DROPPED);
		return 0;
	}
	/*
	 * The record budget: the loader's and libc's fixed reads, and failed
	 * or O_PATH opens (no data read) of paths that no keep entry names.
	 * A failed open of ~/.ssh/id_rsa is a signal and stays.
	 */
	struct prefix_key k = {};
	__u8 cls = (flags & F_PATH_DOTDOT) ? 0 : open_class_of(&k, pb, start, end);
	if (cls == OPEN_CLS_NOISE && open_reads_only(a.flags)) {
		count(&stats, STAT_NOISE_FILE);
		return 0;
	}
	int failed = ret < 0 && cfg_drop_failed_opens;
	int opath = ret >= 0 && (a.flags & O_PATH_) && cfg_drop_path_opens;
	if ((failed || opath) && cls != OPEN_CLS_KEEP) {
		int keep = 0;
		if (failed) {
			keep = keep_name(&k, &pb->buf[base_at & PATH_MASK], base_len);
		} else if (dent) {
			long n = bpf_probe_read_kernel_str(k.data, NAME_KEY_LEN, BPF_CORE_READ(dent, d_name.name));
			if (n > 1) {
				k.prefixlen = (n - 1) * 8;
				keep = bpf_map_lookup_elem(&keep_names, &k) != NULL;
			}
		}
		if (!keep) {
			count(&stats, failed ? STAT_FAILED_DROPPED : STAT_OPATH_DROPPED);
			return 0;
		}
	}

	fill_hdr(&e->hdr, EV_OPEN, t);
	if (trunc)
		flags |= F_PATH_TRUNCATED;
	e->hdr.flags = flags;
	e->ret = ret;
	e->open_flags = a.flags;
	e->mode = a.mode;
	e->syscall = a.syscall;
	__u32 len = copy_path(data, pb, start, end);
	e->path_len = len;
	emit(e, sizeof(*e) + len, EV_OPEN);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int exit_openat(struct trace_event_raw_sys_exit *ctx) { return finish_open(ctx); }

SEC("tracepoint/syscalls/sys_exit_openat2")
int exit_openat2(struct trace_event_raw_sys_exit *ctx) { return finish_open(ctx); }

SEC("tracepoint/syscalls/sys_exit_open")
int exit_open(struct trace_event_raw_sys_exit *ctx) { return finish_open(ctx); }

SEC("tracepoint/syscalls/sys_exit_creat")
int exit_creat(struct trace_event_raw_sys_exit *ctx) { return finish_open(ctx); }

/* ---- connect ---- */

#define AF_INET_  2
#define AF_INET6_ 10

SEC("tracepoint/syscalls/sys_enter_connect")
int enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	if (!current_tracked())
		return 0;
	struct inflight in = {};
	void *uaddr = (void *)ctx->args[1];
	__u16 family = 0;
	bpf_probe_read_user(&family, sizeof(family), uaddr);
	if (family == AF_INET_) {
		struct sockaddr_in sa = {};
		bpf_probe_read_user(&sa, sizeof(sa), uaddr);
		in.port = bpf_ntohs(sa.sin_port);
		__builtin_memcpy(in.addr, &sa.sin_addr, 4);
	} else if (family == AF_INET6_) {
		struct sockaddr_in6 sa = {};
		bpf_probe_read_user(&sa, sizeof(sa), uaddr);
		in.port = bpf_ntohs(sa.sin6_port);
		__builtin_memcpy(in.addr, &sa.sin6_addr, 16);
	} else {
		return 0; /* unix, netlink, ...: not egress */
	}
	in.family = family;
	struct task_struct *t = bpf_get_current_task_btf();
	struct file *f = fd_file(t, (int)ctx->args[0]);
	if (f) {
		struct socket *sock = (struct socket *)BPF_CORE_READ(f, private_data);
		in.sock_type = BPF_CORE_READ(sock, type);
	}
	if (cfg_enforce != ENF_OFF) {
		long rule = connect_rule(family, in.addr, in.port);
		if (rule != -1) {
			/* at entry: the connect may still start; the caller never sees it */
			__u8 act;
			enforce_action(0, &act);
			emit_enforce(t, (__u32)rule, ENF_WHAT_CONNECT, act, family, in.port, in.addr, NULL, 0, 0);
		}
	}
	__u64 id = bpf_get_current_pid_tgid();
	if (bpf_map_update_elem(&inflight, &id, &in, BPF_ANY))
		count(&stats, STAT_INFLIGHT_FULL);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct inflight *in = bpf_map_lookup_elem(&inflight, &id);
	if (!in)
		return 0;
	struct connect_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		bpf_map_delete_elem(&inflight, &id);
		count(&drops, EV_CONNECT);
		return 0;
	}
	fill_hdr(&e->hdr, EV_CONNECT, bpf_get_current_task_btf());
	e->ret = ctx->ret;
	e->family = in->family;
	e->port = in->port;
	__builtin_memcpy(e->addr, in->addr, 16);
	e->sock_type = in->sock_type;
	e->_pad = 0;
	e->_pad2 = 0;
	bpf_ringbuf_submit(e, 0);
	bpf_map_delete_elem(&inflight, &id);
	return 0;
}
