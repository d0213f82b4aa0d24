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

#define PIPEFS_MAGIC_ 0x50495045

/* The pipe on fd of p, by its pipefs inode: both ends of a pipe share it. */
static __always_inline __u64 pipe_ino(struct task_struct *p, int fd)
{
	struct file *f = fd_file(p, fd);
	if (!f)
		return 0;
	struct inode *ino = BPF_CORE_READ(f, f_inode);
	if (BPF_CORE_READ(ino, i_sb, s_magic) != PIPEFS_MAGIC_)
		return 0;
	return BPF_CORE_READ(ino, i_ino);
}

/*
 * Copies argv to the exec record's data at off; returns its length. A cut
 * argv is cut in the middle: the program and its options come first, the
 * files and URLs it acts on last, and padding between them must not push
 * either out. A global function, verified once: the two ways of copying
 * do not multiply the states of the rest of handle_exec.
 */
__noinline __u32 copy_argv(struct ev_buf *ev, __u64 off, __u64 as, __u64 ae)
{
	if (!ev)
		return 0;
	/* the masks below bound it for the verifier; clang must not drop them */
	barrier_var(off);
	struct exec_event *e = (struct exec_event *)ev->raw;
	char *data = ev->raw + sizeof(*e);
	/* 64-bit on purpose: a 32-bit copy gets checked while the other is used */
	__u64 alen = ae > as ? ae - as : 0;
	__u64 max = cfg_max_args;
	if (max > MAX_ARGS_BYTES)
		max = MAX_ARGS_BYTES;
	e->args_tail = 0;
	if (alen <= max) {
		barrier_var(alen);
		if (alen > MAX_ARGS_BYTES)
			return 0;
		if (alen && bpf_probe_read_user(&data[off & EV_DATA_MASK], alen, (void *)as))
			return 0;
		return alen;
	}
	e->hdr.flags |= F_ARGS_TRUNCATED;
	__u64 tail = max / 2;
	__u64 head = max - tail;
	barrier_var(head);
	barrier_var(tail);
	if (head > MAX_ARGS_BYTES || tail > MAX_ARGS_BYTES / 2)
		return 0;
	if (bpf_probe_read_user(&data[off & EV_DATA_MASK], head, (void *)as))
		return 0;
	__u64 toff = off + head;
	barrier_var(toff);
	if (tail && !bpf_probe_read_user(&data[toff & EV_DATA_MASK], tail, (void *)(ae - tail)))
		e->args_tail = tail;
	return head + e->args_tail;
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
	/*
	 * Flags and lengths found on the way go to the record (map memory)
	 * at once, not to locals: the verifier then reads them back as
	 * unknown, and the branches that set them converge instead of
	 * multiplying the states of everything after.
	 */
	e->hdr.flags = flags;
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
		/* fileless: a memfd (a dentry in no tree) or a deleted file */
		struct dentry *d = fp.dentry;
		if ((BPF_CORE_READ(d, d_parent) == d && d != BPF_CORE_READ(fp.mnt, mnt_root)) ||
		    BPF_CORE_READ(exe, f_inode, i_nlink) == 0)
			e->hdr.flags |= F_EXE_UNLINKED;
	}
	e->stdin_pipe = pipe_ino(p, 0);
	e->stdout_pipe = pipe_ino(p, 1);
	e->exe_len = len;
	off += len;

	/* the name as invoked (may be relative, or a symlink) */
	const char *fname = BPF_CORE_READ(bprm, filename);
	long n = bpf_probe_read_kernel_str(&data[off & EV_DATA_MASK], MAX_FILENAME, fname);
	len = n > 0 ? n - 1 : 0;
	e->filename_len = len;
	off += len;

	/* argv, straight from the new image's stack */
	e->args_len = copy_argv(ev, off, BPF_CORE_READ(p, mm, arg_start), BPF_CORE_READ(p, mm, arg_end));
	off += e->args_len;

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
	if (off <= EV_DATA_MASK) {
		bpf_loop(MAX_ENV_STEPS, env_step, &es, 0);
		if (es.len < MAX_HOME) {
			e->home_len = es.len;
			off += es.len;
		}
	}

	if (trunc)
		e->hdr.flags |= F_PATH_TRUNCATED;
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
	bpf_ringbuf_submit(e, wake_flags(EV_FORK));
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
		bpf_ringbuf_submit(e, wake_flags(EV_EXIT));
	} else {
		count(&drops, EV_EXIT);
	}
	bpf_map_delete_elem(&tracked, &tgid);
	return 0;
}

/* ---- file opens ---- */

/*
 * Opens are read at the syscall's exit only: the arguments are still in the
 * task's saved user registers (x86_64 keeps rdi, rsi, rdx and r10 across
 * the call), so no program runs at entry. For a process outside every
 * session an open costs one program and one hash lookup, not two.
 */
#define NR_OPEN              2
#define NR_CREAT             85
#define NR_OPENAT            257
#define NR_OPEN_BY_HANDLE_AT 304
#define NR_OPENAT2           437

/* pt_regs from r10 to di: the syscall argument registers, in one read. */
struct syscall_regs {
	__u64 r10, r9, r8, ax, cx, dx, si, di;
};

const volatile __u8 cfg_drop_failed_opens = 0;
const volatile __u8 cfg_drop_path_opens = 0;

#define O_PATH_ 010000000

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

/*
 * Directories every file of which is noise (/usr/lib/, a node_modules
 * tree), learnt from full walks: an open in one of them is dropped without
 * walking its path again. Keyed by the directory's dentry and mount (the
 * pair a path names); an entry holds the directory's inode number, so a
 * dentry freed and reused for another directory misses, and the generation
 * at which it was learnt: every rename and mount on the host (fop hooks,
 * entry and exit) moves the generation on, since either can give a known
 * directory another path. Only without enforcement, which needs the path.
 */
struct noise_dir_key {
	__u64 dentry;
	__u64 mnt;
};

struct noise_dir_val {
	__u64 gen;
	__u64 ino;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct noise_dir_key);
	__type(value, struct noise_dir_val);
} noise_dirs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} noise_gen SEC(".maps");

static __always_inline __u64 noise_gen_now(void)
{
	__u32 zero = 0;
	__u64 *g = bpf_map_lookup_elem(&noise_gen, &zero);
	return g ? *g : 0;
}

static __always_inline void noise_gen_bump(void)
{
	__u32 zero = 0;
	__u64 *g = bpf_map_lookup_elem(&noise_gen, &zero);
	if (g)
		__sync_fetch_and_add(g, 1);
}

static __always_inline __u64 dentry_ino(struct dentry *d)
{
	return BPF_CORE_READ(d, d_inode, i_ino);
}

/*
 * The record of an open whose file is f (NULL when it failed: then the
 * caller's string in a is the path). Shared by the open syscalls' exits
 * and io_uring's completions.
 */
/* What report_open needs of the call: a small struct, since its stack
 * and its callbacks' must fit the verifier's 512 bytes together. */
struct open_args {
	__u64 uptr;
	__s32 dfd;
	__u32 flags;
	__u32 mode;
	__u16 syscall;
	__u16 nr; /* a syscall exit's number: the rest is read when needed (open_args_read) */
};

/*
 * The arguments of the open syscall a->nr, from the saved user registers.
 * Read only when the record is built: an open in a known noise directory
 * needs none of them. 0 when nr is no open.
 */
static __always_inline int open_args_read(struct task_struct *t, struct open_args *a)
{
	if (!a->nr)
		return 1; /* filled by the caller */
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(t);
	struct syscall_regs r = {};
	if (bpf_probe_read_kernel(&r, sizeof(r), __builtin_preserve_access_index(&regs->r10)))
		return 0;
	switch (a->nr) {
	case NR_OPENAT:
		*a = (struct open_args){.dfd = (int)r.di, .uptr = r.si, .flags = r.dx, .mode = r.r10, .syscall = SYS_OPENAT};
		return 1;
	case NR_OPENAT2: {
		struct open_how how = {};
		bpf_probe_read_user(&how, sizeof(how), (void *)r.dx);
		*a = (struct open_args){.dfd = (int)r.di, .uptr = r.si, .flags = how.flags, .mode = how.mode, .syscall = SYS_OPENAT2};
		return 1;
	}
	case NR_OPEN:
		*a = (struct open_args){.dfd = AT_FDCWD_, .uptr = r.di, .flags = r.si, .mode = r.dx, .syscall = SYS_OPEN};
		return 1;
	case NR_CREAT:
		/* creat(2) == open(O_CREAT|O_WRONLY|O_TRUNC) */
		*a = (struct open_args){.dfd = AT_FDCWD_, .uptr = r.di, .flags = 0100 | 01 | 01000, .mode = r.si, .syscall = SYS_CREAT};
		return 1;
	case NR_OPEN_BY_HANDLE_AT:
		/* a handle names no path: the record gets the file's */
		*a = (struct open_args){.dfd = (int)r.di, .flags = r.dx, .syscall = SYS_OPEN_BY_HANDLE};
		return 1;
	}
	return 0;
}

static __always_inline int report_open(struct task_struct *t, struct file *f, __s32 ret, struct open_args *a)
{
	__u32 zero = 0;
	struct ev_buf *ev = bpf_map_lookup_elem(&ev_scratch, &zero);
	struct path_buf *pb = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!ev || !pb)
		return 0;
	struct open_event *e = (struct open_event *)ev->raw;
	char *data = ev->raw + sizeof(*e);
	__u8 trunc = 0, noise = 0;
	__u16 flags = 0;
	__u32 start, end;
	__u32 base_at = 0, base_len = 0;
	struct dentry *dent = NULL;
	/* the identity is built in the record, which is also the lookup key */
	struct file_id *id = (struct file_id *)&e->ino;
	__u32 target = 0;

	struct noise_dir_key nk = {};
	__u64 gen = 0;
	struct walk_ctx w = {};
	if (f) {
		/* success: the kernel's own view of what was opened */
		struct path fp = BPF_CORE_READ(f, f_path);
		dent = fp.dentry;
		if (cfg_enforce != ENF_OFF) {
			walk(&fp, &w);
			/*
			 * Tracepoints cannot deny; `action: kill` kills at syscall
			 * exit, on the path the kernel resolved. The open has
			 * happened, but the signal is fatal before the caller runs
			 * again. (Before the identity: the enforce record is built
			 * in the same scratch.)
			 */
			if (!w.truncated) {
				long rule = deny_open_rule(pb, w.off, PATH_END);
				if (rule >= 0) {
					__u8 act;
					enforce_action(0, &act);
					emit_enforce(t, rule, ENF_WHAT_OPEN, act, 0, 0, NULL, pb, w.off, PATH_END, 0);
				}
			}
		}
		struct inode *ino = BPF_CORE_READ(f, f_inode);
		struct super_block *sb = BPF_CORE_READ(ino, i_sb);
		id->ino = BPF_CORE_READ(ino, i_ino);
		id->dev = BPF_CORE_READ(sb, s_dev);
		id->_pad = 0;
		/* known by what it is: no path makes it noise */
		if (id_sensitive(id))
			flags |= F_ID_SENSITIVE;
		else if (BPF_CORE_READ(sb, s_magic) == PROC_SUPER_MAGIC_ && (target = proc_other(f)))
			flags |= F_PROC_OTHER;
		if (cfg_enforce == ENF_OFF) {
			struct dentry *dir = BPF_CORE_READ(dent, d_parent);
			nk.dentry = (__u64)dir;
			nk.mnt = (__u64)fp.mnt;
			gen = noise_gen_now();
			if (!flags) {
				struct noise_dir_val *v = bpf_map_lookup_elem(&noise_dirs, &nk);
				if (v && v->gen == gen && v->ino == dentry_ino(dir)) {
					count(&stats, STAT_NOISE_DROPPED);
					count(&stats, STAT_NOISE_DIR_HIT);
					return 0;
				}
			}
			walk(&fp, &w);
		}
		if (!open_args_read(t, a))
			return 0;
		start = w.off;
		if (start == PATH_END) {
			start = PATH_END - 1;
			pb->buf[start & PATH_MASK] = '/';
		}
		end = PATH_END;
		trunc = w.truncated;
		noise = w.noise;
	} else {
		/* failure: the caller's string, made absolute against cwd or dirfd */
		struct upath u = {};
		if (!open_args_read(t, a))
			return 0;
		id->ino = 0;
		id->dev = 0;
		flags |= F_PATH_RAW;
		if (user_path(t, a->uptr, a->dfd, 0, pb, &u))
			return 0;
		start = u.start;
		end = u.end;
		trunc |= u.trunc;
		noise |= u.noise;
		base_at = u.base_at;
		base_len = u.base_len;
		if (u.dotdot) {
			/* "/usr/lib/../../etc/shadow" must not hide behind a noise prefix */
			flags |= F_PATH_DOTDOT;
			noise = 0;
		}
	}
	int known = flags & (F_ID_SENSITIVE | F_PROC_OTHER | F_PATH_DOTDOT);
	if (!known && (noise || prefix_is_noise(pb, start, end))) {
		count(&stats, STAT_NOISE_DROPPED);
		/* the directory alone is noise: every file in it is */
		if (f && cfg_enforce == ENF_OFF && w.leaf_off > start && w.leaf_off < PATH_END &&
		    (w.noise_dir || prefix_is_noise(pb, start, w.leaf_off + 1))) {
			struct noise_dir_val v = {.gen = gen, .ino = dentry_ino((struct dentry *)nk.dentry)};
			bpf_map_update_elem(&noise_dirs, &nk, &v, BPF_ANY);
		}
		return 0;
	}
	/*
	 * The record budget: the loader's and libc's fixed reads, and failed
	 * or O_PATH opens (no data read) of paths that no keep entry names.
	 * A failed open of ~/.ssh/id_rsa is a signal and stays.
	 */
	struct prefix_key k = {};
	__u8 cls = known ? 0 : open_class_of(&k, pb, start, end);
	if (cls == OPEN_CLS_NOISE && open_reads_only(a->flags)) {
		count(&stats, STAT_NOISE_FILE);
		return 0;
	}
	int failed = ret < 0 && cfg_drop_failed_opens;
	int opath = ret >= 0 && (a->flags & O_PATH_) && cfg_drop_path_opens;
	if ((failed || opath) && cls != OPEN_CLS_KEEP && !known) {
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
	e->open_flags = a->flags;
	e->mode = a->mode;
	e->syscall = a->syscall;
	e->target = target;
	__u32 len = copy_path(data, pb, start, end);
	e->path_len = len;
	emit(e, sizeof(*e) + len, EV_OPEN);
	return 0;
}

static __always_inline int finish_open(struct trace_event_raw_sys_exit *ctx)
{
	if (!current_tracked())
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	__s32 ret = ctx->ret;
	/* a failed open by handle names nothing: no record */
	if (ret < 0 && ctx->id == NR_OPEN_BY_HANDLE_AT)
		return 0;
	struct open_args a = {.nr = ctx->id};
	return report_open(t, ret >= 0 ? fd_file(t, ret) : NULL, ret, &a);
}

/*
 * One program for the exits of every open syscall (sys_exit_* records all
 * have the same layout): the verifier checks it once, the loader attaches
 * it to each (kernel.go).
 */
SEC("tracepoint/syscalls/sys_exit_openat")
int exit_open_any(struct trace_event_raw_sys_exit *ctx) { return finish_open(ctx); }

/*
 * io_uring opens name no syscall: IORING_OP_OPENAT/OPENAT2 run in the
 * submitter or in an io-wq worker of its thread group. At completion the
 * fd is installed, so the record is the file's, as for a syscall's exit.
 * Direct descriptors (file_slot) get no fd and failures have lost their
 * name by then: neither is reported here (the LSM backend sees all).
 */
SEC("tp_btf/io_uring_complete")
int BPF_PROG(iouring_complete, void *ring, void *req)
{
	if (!current_tracked())
		return 0;
	struct io_kiocb *r = req;
	if (!bpf_core_field_exists(r->cqe))
		return 0;
	__u8 op = BPF_CORE_READ(r, opcode);
	if (op != IORING_OP_OPENAT && op != IORING_OP_OPENAT2)
		return 0;
	struct io_open *o = (struct io_open *)r;
	__s32 res = BPF_CORE_READ(r, cqe.res);
	if (res < 0 || BPF_CORE_READ(o, file_slot))
		return 0;
	struct open_args a = {
		.flags = BPF_CORE_READ(o, how.flags),
		.mode = BPF_CORE_READ(o, how.mode),
		.syscall = SYS_IO_URING,
	};
	struct task_struct *t = bpf_get_current_task_btf();
	struct file *f = fd_file(t, res);
	if (!f)
		return 0;
	return report_open(t, f, res, &a);
}

/* ---- changes of files: link, rename, unlink, chmod, mount ---- */

#define MS_BIND_        4096
#define MS_MOVE_        8192
#define MS_REMOUNT_     32
#define MS_PROPAGATION_ ((1 << 17) | (1 << 18) | (1 << 19) | (1 << 20)) /* UNBINDABLE PRIVATE SLAVE SHARED */

/* x86_64 syscall numbers of the file ops (the object is built for amd64) */
#define NR_RENAME     82
#define NR_LINK       86
#define NR_UNLINK     87
#define NR_CHMOD      90
#define NR_FCHMOD     91
#define NR_MOUNT      165
#define NR_UNLINKAT   263
#define NR_RENAMEAT   264
#define NR_LINKAT     265
#define NR_FCHMODAT   268
#define NR_RENAMEAT2  316
#define NR_MOVE_MOUNT 429
#define NR_FCHMODAT2  452

/* A rename or mount, by any process, may give a directory another path. */
static __always_inline void fop_moves_paths(long nr)
{
	if (nr == NR_RENAME || nr == NR_RENAMEAT || nr == NR_RENAMEAT2 || nr == NR_MOUNT || nr == NR_MOVE_MOUNT)
		noise_gen_bump();
}

static __always_inline int stash_fop(__u16 op, int dfd, __u64 uptr, int dfd2, __u64 uptr2, __u32 mode)
{
	if (!current_tracked())
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	struct inflight in = {.uptr = uptr, .dfd = dfd, .uptr2 = uptr2, .dfd2 = dfd2, .mode = mode, .syscall = op};
	if (bpf_map_update_elem(&inflight, &id, &in, BPF_ANY))
		count(&stats, STAT_INFLIGHT_FULL);
	return 0;
}

/* The two paths of a file op and what was learnt building them. */
struct fop_ctx {
	__u64 uptr[2];
	__s32 dfd[2];
	__u32 len[2];
	struct file_id id;
	__u8 raw;   /* the first path is mount's source: absolute only if a bind */
	__u8 noise; /* every path is noise */
	__u8 keep;  /* a keep entry names a path */
	__u8 trunc;
};

/*
 * Writes path i of a file op at its place in the record's data: the
 * caller's string made absolute, or (no string, an fd) the fd's file. A
 * global function: the verifier checks it once, whatever calls it.
 */
__noinline int fop_path(struct fop_ctx *c, __u64 i)
{
	__u32 zero = 0;
	struct path_buf *pb = bpf_map_lookup_elem(&path_scratch, &zero);
	struct ev_buf *ev = bpf_map_lookup_elem(&ev_scratch, &zero);
	if (!c || !pb || !ev || i > 1)
		return 1;
	struct task_struct *t = bpf_get_current_task_btf();
	__u64 uptr = i ? c->uptr[1] : c->uptr[0];
	int dfd = i ? c->dfd[1] : c->dfd[0];
	if (i && !uptr)
		return 1;
	struct upath u = {};
	__u8 n = 0;
	if (!uptr || user_path(t, uptr, dfd, i ? 0 : c->raw, pb, &u)) {
		/* fchmod(fd), move_mount(fd, ""): the kernel's own file */
		struct file *f = fd_file(t, dfd);
		if (!f)
			return 0;
		struct path fp = BPF_CORE_READ(f, f_path);
		u.start = walk_abs(&fp, pb, &u.trunc, &n);
		u.end = PATH_END;
		if (!i)
			inode_id(BPF_CORE_READ(f, f_inode), &c->id);
	} else {
		n = u.noise && !u.dotdot;
		struct prefix_key k = {};
		if (u.base_len && keep_name(&k, &pb->buf[u.base_at & PATH_MASK], u.base_len))
			c->keep = 1;
	}
	if (!n && !u.dotdot)
		n = prefix_is_noise(pb, u.start, u.end);
	if (!n)
		c->noise = 0;
	struct prefix_key k = {};
	if (open_class_of(&k, pb, u.start, u.end) == OPEN_CLS_KEEP)
		c->keep = 1;
	c->trunc |= u.trunc;
	__u32 off = i ? c->len[0] : 0;
	char *data = ev->raw + sizeof(struct file_op_event);
	__u32 len = copy_path(&data[off & (PATH_MAX_LEN - 1)], pb, u.start, u.end);
	if (i)
		c->len[1] = len;
	else
		c->len[0] = len;
	return 0;
}

static __always_inline int finish_fop(struct trace_event_raw_sys_exit *ctx)
{
	fop_moves_paths(ctx->id);
	__u64 pid = bpf_get_current_pid_tgid();
	struct inflight *in = bpf_map_lookup_elem(&inflight, &pid);
	if (!in)
		return 0;
	struct inflight a = *in;
	bpf_map_delete_elem(&inflight, &pid);
	__s32 ret = ctx->ret;

	struct fop_ctx c = {
		.uptr = {a.uptr, a.uptr2},
		.dfd = {a.dfd, a.dfd2},
		/* mount's source is a path only for a bind mount ("tmpfs", "/dev/sda1") */
		.raw = a.syscall == FOP_MOUNT && !(a.mode & MS_BIND_),
		.noise = 1,
	};
	fop_path(&c, 0);
	fop_path(&c, 1);
	if (!c.len[0] && !c.len[1])
		return 0;
	/*
	 * The budget: what noise rules cover on every side is dropped; an
	 * unlink, and any failed change, only counts when a keep entry names
	 * the file (rm of a build tree is not a record per file).
	 */
	if (c.noise && a.syscall != FOP_MOUNT) {
		count(&stats, STAT_NOISE_DROPPED);
		return 0;
	}
	if ((ret < 0 || a.syscall == FOP_UNLINK) && !c.keep) {
		count(&stats, STAT_FOP_DROPPED);
		return 0;
	}
	/* a propagation change or a remount (unshare -m makes "/" private)
	 * puts nothing anywhere */
	if (a.syscall == FOP_MOUNT && !(a.mode & (MS_BIND_ | MS_MOVE_)) && (a.mode & (MS_REMOUNT_ | MS_PROPAGATION_))) {
		count(&stats, STAT_FOP_DROPPED);
		return 0;
	}
	__u32 zero = 0;
	struct ev_buf *ev = bpf_map_lookup_elem(&ev_scratch, &zero);
	if (!ev)
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	struct file_op_event *e = (struct file_op_event *)ev->raw;
	fill_hdr(&e->hdr, EV_FILE_OP, t);
	e->hdr.flags = (a.uptr ? F_PATH_RAW : 0) | (c.trunc ? F_PATH_TRUNCATED : 0);
	e->ret = ret;
	e->op = a.syscall;
	e->path_len = c.len[0];
	e->path2_len = c.len[1];
	e->_pad = 0;
	e->mode = a.mode;
	e->ino = c.id.ino;
	e->dev = c.id.dev;
	e->_pad2 = 0;
	__u64 size = sizeof(*e) + ((c.len[0] + c.len[1]) & (2 * PATH_MAX_LEN - 1));
	if (size > sizeof(*ev))
		return 0;
	emit(e, size, EV_FILE_OP);
	return 0;
}

#define AT_REMOVEDIR_ 0x200

/*
 * The entries of the file-op syscalls, told apart by the syscall number. A
 * tracepoint program may only attach where the record holds every
 * argument it reads, so there is one program per argument count, not one
 * per syscall.
 */
static __always_inline int enter_fop(long nr, unsigned long *a)
{
	fop_moves_paths(nr);
	switch (nr) {
	case NR_LINK:
		return stash_fop(FOP_LINK, AT_FDCWD_, a[0], AT_FDCWD_, a[1], 0);
	case NR_LINKAT:
		return stash_fop(FOP_LINK, (int)a[0], a[1], (int)a[2], a[3], 0);
	case NR_RENAME:
		return stash_fop(FOP_RENAME, AT_FDCWD_, a[0], AT_FDCWD_, a[1], 0);
	case NR_RENAMEAT:
	case NR_RENAMEAT2:
		return stash_fop(FOP_RENAME, (int)a[0], a[1], (int)a[2], a[3], 0);
	case NR_UNLINK:
		return stash_fop(FOP_UNLINK, AT_FDCWD_, a[0], 0, 0, 0);
	case NR_UNLINKAT:
		if (a[2] & AT_REMOVEDIR_)
			return 0; /* rmdir: an empty directory holds no file */
		return stash_fop(FOP_UNLINK, (int)a[0], a[1], 0, 0, 0);
	case NR_CHMOD:
		return stash_fop(FOP_CHMOD, AT_FDCWD_, a[0], 0, 0, a[1]);
	case NR_FCHMOD:
		return stash_fop(FOP_CHMOD, (int)a[0], 0, 0, 0, a[1]);
	case NR_FCHMODAT:
	case NR_FCHMODAT2:
		return stash_fop(FOP_CHMOD, (int)a[0], a[1], 0, 0, a[2]);
	case NR_MOUNT:
		return stash_fop(FOP_MOUNT, AT_FDCWD_, a[0], AT_FDCWD_, a[1], a[3]);
	case NR_MOVE_MOUNT:
		/* the source is usually open_tree(2)'s fd with an empty path */
		return stash_fop(FOP_MOUNT, (int)a[0], a[1], (int)a[2], a[3], MS_BIND_);
	}
	return 0;
}

/* unlink */
SEC("tracepoint/syscalls/sys_enter_unlink")
int enter_fop1(struct trace_event_raw_sys_enter *ctx)
{
	unsigned long a[4] = {ctx->args[0]};
	return enter_fop(ctx->id, a);
}

/* link, rename, chmod, fchmod */
SEC("tracepoint/syscalls/sys_enter_link")
int enter_fop2(struct trace_event_raw_sys_enter *ctx)
{
	unsigned long a[4] = {ctx->args[0], ctx->args[1]};
	return enter_fop(ctx->id, a);
}

/* unlinkat, fchmodat */
SEC("tracepoint/syscalls/sys_enter_unlinkat")
int enter_fop3(struct trace_event_raw_sys_enter *ctx)
{
	unsigned long a[4] = {ctx->args[0], ctx->args[1], ctx->args[2]};
	return enter_fop(ctx->id, a);
}

/* linkat, renameat, renameat2, fchmodat2, mount, move_mount */
SEC("tracepoint/syscalls/sys_enter_linkat")
int enter_fop4(struct trace_event_raw_sys_enter *ctx)
{
	unsigned long a[4] = {ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3]};
	return enter_fop(ctx->id, a);
}

/* One program for the exits of every file-op syscall, as for opens. */
SEC("tracepoint/syscalls/sys_exit_linkat")
int exit_fop_any(struct trace_event_raw_sys_exit *ctx) { return finish_fop(ctx); }

/* ---- connect ---- */

/*
 * Set by the receiver once connect4/connect6 are attached: they deny
 * connects with EPERM, so sys_enter_connect leaves enforcement to them
 * (no kill needed for a connect on the tracepoint backend).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u8);
} sock_enforce SEC(".maps");

static __always_inline int sock_enforces(void)
{
	__u32 zero = 0;
	__u8 *on = bpf_map_lookup_elem(&sock_enforce, &zero);
	return on && *on;
}


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
	if (cfg_enforce != ENF_OFF && !sock_enforces()) {
		long rule = connect_rule(family, in.addr, in.port);
		if (rule != -1) {
			/* at entry: the connect may still start; the caller never sees it */
			__u8 act;
			enforce_action(0, &act);
			emit_enforce(t, (__u32)rule, ENF_WHAT_CONNECT, act, family, in.port, in.addr, NULL, 0, 0, 0);
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
	bpf_ringbuf_submit(e, wake_flags(EV_CONNECT));
	bpf_map_delete_elem(&inflight, &id);
	return 0;
}

/* ---- connects and sends by any path: cgroup sock_addr programs ---- */

/*
 * At the cgroup v2 root these run for every connect and every addressed
 * UDP send of every process, whatever the path: connect(2), io_uring's
 * IORING_OP_CONNECT, TCP Fast Open's sendto(MSG_FASTOPEN), sendto/sendmsg
 * of an unconnected UDP socket. A process outside every session costs one
 * hash lookup, and no syscall takes the slow path for them. They report
 * what the syscall hooks do not see: a connect(2) the tracepoint or LSM
 * hook is following (its marker in `inflight`) reports itself there.
 */

#define SOCK_STREAM_ 1
#define SOCK_DGRAM_  2

/* (tgid, destination) of the addressed UDP sends already reported: one
 * record per process and destination, not one per datagram. */
struct send_key {
	__u32 tgid;
	__u16 family;
	__u16 port;
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct send_key);
	__type(value, __u8);
} sent_dests SEC(".maps");

/*
 * What the record of the connection's end needs from its connect. Every
 * connect from CLOSE comes here (the cgroup hook runs at pre_connect), so a
 * socket connected again after a failure is a new connection. A connect
 * this program then denies never leaves CLOSE and is never reported.
 */
static __always_inline void note_connect(struct sock_owner *o, struct send_key *k)
{
	o->connect_ts = bpf_ktime_get_boot_ns();
	o->family = k->family;
	o->port = k->port;
	o->flags = SOCK_OWNER_CONNECT;
	__builtin_memset(o->_pad, 0, sizeof(o->_pad));
	__builtin_memcpy(o->addr, k->addr, 16);
}

static __always_inline int sock_addr_report(struct bpf_sock_addr *ctx, int v6, int send)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if (!lookup_tracked(tgid))
		return 1;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct sock_owner *o = bpf_sk_storage_get(&sess_socks, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (o && (!o->tgid || !send)) {
		/* a connect makes its caller the owner: its end is reported to it */
		o->tgid = tgid;
		o->tid = (__u32)id;
		o->start = leader_start(task);
	}
	struct send_key k = {.tgid = tgid, .family = v6 ? AF_INET6_ : AF_INET_};
	k.port = bpf_ntohs((__u16)ctx->user_port);
	if (v6) {
		__u32 a0 = ctx->user_ip6[0], a1 = ctx->user_ip6[1], a2 = ctx->user_ip6[2], a3 = ctx->user_ip6[3];
		__builtin_memcpy(&k.addr[0], &a0, 4);
		__builtin_memcpy(&k.addr[4], &a1, 4);
		__builtin_memcpy(&k.addr[8], &a2, 4);
		__builtin_memcpy(&k.addr[12], &a3, 4);
	} else {
		__u32 a = ctx->user_ip4;
		__builtin_memcpy(k.addr, &a, 4);
	}
	if (o && !send)
		note_connect(o, &k);
	/* a connect(2) its syscall hook follows reports itself, with its result */
	int syscall_seen = 0;
	if (!send) {
		struct inflight *in = bpf_map_lookup_elem(&inflight, &id);
		if (in && in->sock_type == INFLIGHT_LSM_MARK) {
			/*
			 * lsm/socket_connect reported and judged a connect to this
			 * destination. Only to this one: a connect that failed
			 * between the two hooks (EISCONN) leaves its marker behind,
			 * which must not let another way out pass unjudged.
			 */
			__u64 a0, a1, b0, b1;
			__builtin_memcpy(&a0, &in->addr[0], 8);
			__builtin_memcpy(&a1, &in->addr[8], 8);
			__builtin_memcpy(&b0, &k.addr[0], 8);
			__builtin_memcpy(&b1, &k.addr[8], 8);
			int same = in->family == k.family && in->port == k.port && a0 == b0 && a1 == b1;
			bpf_map_delete_elem(&inflight, &id);
			if (same)
				return 1;
		} else if (in) {
			syscall_seen = 1;
		}
	}
	/*
	 * Enforcement: the one place that sees every way out can deny it
	 * (returning 0 fails the syscall with EPERM) on any backend. No kill:
	 * a cgroup program may not signal.
	 */
	if (cfg_enforce != ENF_OFF) {
		long rule = connect_rule(k.family, k.addr, k.port);
		if (rule != -1) {
			__u8 act = cfg_enforce == ENF_ENFORCE ? ENF_ACT_DENY : ENF_ACT_AUDIT;
			emit_enforce(task, (__u32)rule, ENF_WHAT_CONNECT, act,
				     k.family, k.port, k.addr, NULL, 0, 0, send ? F_SOCK_SEND : F_SOCK_CGROUP);
			if (act == ENF_ACT_DENY)
				return 0;
		}
	}
	if (syscall_seen)
		return 1;
	if (send) {
		__u8 one = 1;
		if (bpf_map_lookup_elem(&sent_dests, &k))
			return 1;
		bpf_map_update_elem(&sent_dests, &k, &one, BPF_ANY);
	}
	struct connect_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(&drops, EV_CONNECT);
		return 1;
	}
	fill_hdr(&e->hdr, EV_CONNECT, task);
	e->hdr.flags = send ? F_SOCK_SEND : F_SOCK_CGROUP;
	e->ret = 0;
	e->family = k.family;
	e->port = k.port;
	__builtin_memcpy(e->addr, k.addr, 16);
	e->sock_type = ctx->type;
	e->_pad = 0;
	e->_pad2 = 0;
	bpf_ringbuf_submit(e, wake_flags(EV_CONNECT));
	return 1;
}

SEC("cgroup/connect4")
int sock_connect4(struct bpf_sock_addr *ctx) { return sock_addr_report(ctx, 0, 0); }

SEC("cgroup/connect6")
int sock_connect6(struct bpf_sock_addr *ctx) { return sock_addr_report(ctx, 1, 0); }

SEC("cgroup/sendmsg4")
int sock_sendmsg4(struct bpf_sock_addr *ctx) { return sock_addr_report(ctx, 0, 1); }

SEC("cgroup/sendmsg6")
int sock_sendmsg6(struct bpf_sock_addr *ctx) { return sock_addr_report(ctx, 1, 1); }

/* ---- how each TCP connection of a session process ended ---- */

#define TCP_ESTABLISHED_ 1
#define TCP_SYN_SENT_    2
#define TCP_FIN_WAIT1_   4
#define TCP_FIN_WAIT2_   5
#define TCP_CLOSE_       7
#define TCP_LAST_ACK_    9
#define TCP_LISTEN_      10
#define TCP_CLOSING_     11
#define SHUTDOWN_MASK_   3
#define SOCK_DONE_BIT    1 /* enum sock_flags: SOCK_DONE, the peer's FIN came */

/*
 * Every TCP state change on the host comes here (a softirq, a timer, a
 * close): a socket no session process connected has no sess_socks entry,
 * one pointer test. A session socket's connection is reported once:
 *   - the connect failed: SYN_SENT -> CLOSE (sk_err says why);
 *   - the local side is done with it: the process closed it (close(2), or
 *     its exit closing its files) or shut both directions, seen at its
 *     FIN_WAIT1, FIN_WAIT2, CLOSING or LAST_ACK (also a transition to the
 *     same state: close(2) after shutdown(SHUT_WR)). A shutdown(SHUT_WR)
 *     alone is not the end: the process may still read;
 *   - otherwise at CLOSE (a reset, a timeout, the peer's FIN after a
 *     half close).
 * The bytes are the kernel's counters at that point: what was acked, and
 * what was written and not yet acked (write_seq - snd_una).
 */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(sock_set_state, const struct sock *csk, int oldstate, int newstate)
{
	struct sock *sk = (struct sock *)csk;
	switch (newstate) {
	case TCP_FIN_WAIT1_:
	case TCP_FIN_WAIT2_:
	case TCP_CLOSING_:
	case TCP_LAST_ACK_:
	case TCP_CLOSE_:
		break;
	default:
		return 0;
	}
	if (oldstate == TCP_CLOSE_ || oldstate == TCP_LISTEN_)
		return 0; /* never started: a denied connect's socket closed */
	struct sock_owner *o = bpf_sk_storage_get(&sess_socks, sk, 0, 0);
	if (!o || (o->flags & (SOCK_OWNER_CONNECT | SOCK_OWNER_REPORTED)) != SOCK_OWNER_CONNECT)
		return 0;
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	if (newstate != TCP_CLOSE_ && (BPF_CORE_READ(sk, sk_shutdown) & SHUTDOWN_MASK_) != SHUTDOWN_MASK_)
		return 0;
	/* state changes of one socket are serialised by its lock */
	o->flags |= SOCK_OWNER_REPORTED;
	struct conn_close_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(&drops, EV_CONN_CLOSE);
		return 0;
	}
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	e->hdr.kind = EV_CONN_CLOSE;
	e->hdr.version = EVENT_VERSION;
	e->hdr.flags = 0;
	e->hdr.pid = o->tgid;
	e->hdr.tid = o->tid;
	e->hdr._pad = 0;
	e->hdr.ts = bpf_ktime_get_boot_ns();
	e->hdr.start = o->start;
	e->connect_ts = o->connect_ts;
	e->bytes_acked = BPF_CORE_READ(tp, bytes_acked);
	e->bytes_received = BPF_CORE_READ(tp, bytes_received);
	e->snd_una = BPF_CORE_READ(tp, snd_una);
	e->write_seq = BPF_CORE_READ(tp, write_seq);
	e->sk_err = BPF_CORE_READ(sk, sk_err);
	e->family = o->family;
	e->port = o->port;
	__builtin_memcpy(e->addr, o->addr, 16);
	e->oldstate = (__u8)oldstate;
	e->newstate = (__u8)newstate;
	e->fin_rcvd = (BPF_CORE_READ(sk, __sk_common.skc_flags) >> SOCK_DONE_BIT) & 1;
	e->_pad = 0;
	e->_pad2 = 0;
	bpf_ringbuf_submit(e, wake_flags(EV_CONN_CLOSE));
	return 0;
}
