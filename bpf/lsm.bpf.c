//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * agentwatch LSM backend: file opens and connects of session processes seen
 * by security_file_open / security_socket_connect, which every path to a
 * file or a socket goes through whatever the syscall, and which can deny;
 * and the changes of files (link, rename, unlink, chmod, mount) seen by the
 * path and mount hooks, so that this backend needs no syscall tracepoint.
 * Process lifecycle (exec/fork/exit) stays with the tp_btf programs of
 * agentwatch.bpf.c; this object shares their maps (loaded with
 * MapReplacements), so there is one `tracked` map and one ring buffer.
 *
 * The records are the tracepoint backend's: EV_OPEN with syscall
 * SYS_LSM_FILE_OPEN, EV_CONNECT, EV_FILE_OP, plus EV_ENFORCE when a rule
 * matches. The hooks run before the open/connect/change completes, so
 * `ret` is the verdict (0 or -EPERM; file changes: 0), not an fd or the
 * connect result.
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
	bpf_ringbuf_submit(e, wake_flags(EV_CONNECT));
	return verdict;
}

/* ---- changes of files: link, rename, unlink, chmod, mount ----
 *
 * The path hooks (CONFIG_SECURITY_PATH) and the mount hooks, which every
 * syscall that changes a name or a mode goes through. They emit the
 * tracepoint backend's EV_FILE_OP records with its drop rules, with two
 * differences that follow from where they run: the kernel has resolved
 * the paths (symlinks followed where the syscall follows them, no ".."),
 * so they are walked from the dentries, not read from the caller; and the
 * hook runs before the change, so ret is 0. A change that fails before
 * the hook (ENOENT, EEXIST, EXDEV, EROFS lookups and checks) is not seen;
 * one that fails after it (the inode's permission check) is reported
 * with ret 0.
 */

#define MS_BIND_        4096
#define MS_MOVE_        8192
#define MS_REMOUNT_     32
#define MS_PROPAGATION_ ((1 << 17) | (1 << 18) | (1 << 19) | (1 << 20)) /* UNBINDABLE PRIVATE SLAVE SHARED */
#define S_IFMT_         0170000
#define S_IFREG_        0100000

/* What the paths of one file op came to. */
struct fop_acc {
	__u32 len[2]; /* bytes of path and path2 in the record */
	__u8 noise;   /* every path is noise */
	__u8 keep;    /* a keep entry names a path */
	__u8 trunc;
	__u8 raw;     /* path is the caller's string (mount's source) */
};

/* The record's variable part, in the per-CPU event scratch. */
static __always_inline char *fop_data(void)
{
	__u32 zero = 0;
	struct ev_buf *ev = bpf_map_lookup_elem(&ev_scratch, &zero);
	return ev ? ev->raw + sizeof(struct file_op_event) : NULL;
}

/* Copies path_scratch[start, end) as path i of the record. */
static __always_inline void fop_put(struct fop_acc *a, int i, struct path_buf *pb, __u32 start, __u32 end)
{
	char *data = fop_data();
	if (!data)
		return;
	__u32 off = i ? a->len[0] : 0;
	__u32 len = copy_path(&data[off & (PATH_MAX_LEN - 1)], pb, start, end);
	if (i)
		a->len[1] = len;
	else
		a->len[0] = len;
}

/*
 * Path i of a file op: the dentry d under the mount mnt, walked to an
 * absolute path, tested against the noise rules and the keep entries as
 * the tracepoint backend tests the caller's string, and copied into the
 * record.
 */
static __always_inline void fop_walk(struct fop_acc *a, int i, struct vfsmount *mnt, struct dentry *d)
{
	__u32 zero = 0;
	struct path_buf *pb = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!pb || !mnt || !d)
		return;
	struct path p = {.mnt = mnt, .dentry = d};
	__u8 noise = 0;
	__u32 start = walk_abs(&p, pb, &a->trunc, &noise);
	__u32 end = PATH_END;
	if (!noise)
		noise = prefix_is_noise(pb, start, end);
	if (!noise)
		a->noise = 0;
	struct prefix_key k = {};
	if (open_class_of(&k, pb, start, end) == OPEN_CLS_KEEP)
		a->keep = 1;
	/* the basename against keep_names, as a prefix */
	struct prefix_key nk = {};
	long n = bpf_probe_read_kernel_str(nk.data, NAME_KEY_LEN, BPF_CORE_READ(d, d_name.name));
	if (n > 1) {
		nk.prefixlen = (n - 1) * 8;
		if (bpf_map_lookup_elem(&keep_names, &nk))
			a->keep = 1;
	}
	fop_put(a, i, pb, start, end);
}

/* The identity the file has after the change, where the tracepoint
 * backend's receiver would stat one: a regular file's. */
static __always_inline void fop_reg_id(struct dentry *d, struct file_id *id)
{
	struct inode *ino = BPF_CORE_READ(d, d_inode);
	if (ino && (BPF_CORE_READ(ino, i_mode) & S_IFMT_) == S_IFREG_)
		inode_id(ino, id);
}

/*
 * Applies the tracepoint backend's budget and emits the record: a change
 * whose paths are all noise is dropped (a mount is not), and so is an
 * unlink no keep entry names. (Failed changes, the other half of that
 * rule, do not reach a hook that runs first.)
 */
static __always_inline int fop_emit(__u16 op, __u32 mode, struct fop_acc *a, struct file_id *id)
{
	if (!a->len[0] && !a->len[1])
		return 0;
	if (a->noise && op != FOP_MOUNT) {
		count(&stats, STAT_NOISE_DROPPED);
		return 0;
	}
	if (op == FOP_UNLINK && !a->keep) {
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
	e->hdr.flags = (a->raw ? F_PATH_RAW : 0) | (a->trunc ? F_PATH_TRUNCATED : 0);
	e->ret = 0;
	e->op = op;
	e->path_len = a->len[0];
	e->path2_len = a->len[1];
	e->_pad = 0;
	e->mode = mode;
	e->ino = id->ino;
	e->dev = id->dev;
	e->_pad2 = 0;
	__u64 size = sizeof(*e) + ((a->len[0] + a->len[1]) & (2 * PATH_MAX_LEN - 1));
	if (size > sizeof(*ev))
		return 0;
	emit(e, size, EV_FILE_OP);
	return 0;
}

/* link(2), linkat(2): old_dentry is on new_dir's mount (EXDEV is checked
 * before the hook). */
SEC("lsm/path_link")
int BPF_PROG(lsm_path_link, struct dentry *old_dentry, const struct path *new_dir, struct dentry *new_dentry, int ret)
{
	if (ret)
		return ret;
	if (!current_tracked())
		return 0;
	struct vfsmount *mnt = BPF_CORE_READ(new_dir, mnt);
	struct fop_acc a = {.noise = 1};
	struct file_id id = {};
	fop_walk(&a, 0, mnt, old_dentry);
	fop_walk(&a, 1, mnt, new_dentry);
	fop_reg_id(old_dentry, &id);
	return fop_emit(FOP_LINK, 0, &a, &id);
}

/* rename(2), renameat(2), renameat2(2) (RENAME_EXCHANGE too: the file
 * at the old name ends up at the new one either way). */
SEC("lsm/path_rename")
int BPF_PROG(lsm_path_rename, const struct path *old_dir, struct dentry *old_dentry, const struct path *new_dir,
	     struct dentry *new_dentry, unsigned int flags, int ret)
{
	if (ret)
		return ret;
	if (!current_tracked())
		return 0;
	struct fop_acc a = {.noise = 1};
	struct file_id id = {};
	fop_walk(&a, 0, BPF_CORE_READ(old_dir, mnt), old_dentry);
	fop_walk(&a, 1, BPF_CORE_READ(new_dir, mnt), new_dentry);
	fop_reg_id(old_dentry, &id);
	return fop_emit(FOP_RENAME, 0, &a, &id);
}

/* unlink(2), unlinkat(2) without AT_REMOVEDIR (rmdir has its own hook).
 * No identity: the name is going, as on the tracepoint backend. */
SEC("lsm/path_unlink")
int BPF_PROG(lsm_path_unlink, const struct path *dir, struct dentry *dentry, int ret)
{
	if (ret)
		return ret;
	if (!current_tracked())
		return 0;
	struct fop_acc a = {.noise = 1};
	struct file_id id = {};
	fop_walk(&a, 0, BPF_CORE_READ(dir, mnt), dentry);
	return fop_emit(FOP_UNLINK, 0, &a, &id);
}

/* chmod(2), fchmod(2), fchmodat(2), fchmodat2(2): all go through
 * chmod_common, which has the file (symlinks followed). */
SEC("lsm/path_chmod")
int BPF_PROG(lsm_path_chmod, const struct path *path, umode_t mode, int ret)
{
	if (ret)
		return ret;
	if (!current_tracked())
		return 0;
	struct fop_acc a = {.noise = 1};
	struct file_id id = {};
	struct dentry *d = BPF_CORE_READ(path, dentry);
	fop_walk(&a, 0, BPF_CORE_READ(path, mnt), d);
	fop_reg_id(d, &id);
	return fop_emit(FOP_CHMOD, mode, &a, &id);
}

/*
 * mount(2): dev_name is the kernel's copy of the caller's source string
 * ("tmpfs", "/dev/sda1", a bind mount's directory), path the mount point
 * the kernel resolved. The source is a path only for a bind mount: then a
 * relative one is made absolute against the cwd, as the tracepoint
 * backend does. flags have lost MS_MGC_VAL.
 */
SEC("lsm/sb_mount")
int BPF_PROG(lsm_sb_mount, const char *dev_name, const struct path *path, const char *type, unsigned long flags,
	     void *data, int ret)
{
	if (ret)
		return ret;
	if (!current_tracked())
		return 0;
	__u32 fl = flags;
	/* a propagation change or a remount (unshare -m makes "/" private)
	 * puts nothing anywhere */
	if (!(fl & (MS_BIND_ | MS_MOVE_)) && (fl & (MS_REMOUNT_ | MS_PROPAGATION_))) {
		count(&stats, STAT_FOP_DROPPED);
		return 0;
	}
	__u32 zero = 0;
	struct path_buf *pb = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!pb)
		return 0;
	struct fop_acc a = {.noise = 1};
	long n = dev_name ? bpf_probe_read_kernel_str(&pb->buf[RAW_AT], PATH_MAX_LEN - 1, dev_name) : 0;
	if (n > 1) {
		__u32 start = RAW_AT, end = RAW_AT + n - 1;
		if (pb->buf[RAW_AT] != '/' && (fl & MS_BIND_)) {
			struct task_struct *t = bpf_get_current_task_btf();
			struct path cwd = BPF_CORE_READ(t, fs, pwd);
			__u8 noise = 0;
			start = walk_path(&cwd, &a.trunc, &noise);
			pb->buf[PATH_END] = '/';
		}
		a.raw = 1;
		fop_put(&a, 0, pb, start, end);
	}
	fop_walk(&a, 1, BPF_CORE_READ(path, mnt), BPF_CORE_READ(path, dentry));
	struct file_id id = {};
	return fop_emit(FOP_MOUNT, fl, &a, &id);
}

/*
 * A mount of the caller's namespace through which the dentries of m's
 * filesystem have their absolute paths: its cwd's or its root's mount,
 * when it shows the whole filesystem. NULL when neither does.
 */
static __always_inline struct vfsmount *ns_mount_of(struct task_struct *t, struct vfsmount *m)
{
	struct super_block *sb = BPF_CORE_READ(m, mnt_sb);
	struct dentry *sroot = BPF_CORE_READ(sb, s_root);
	struct vfsmount *c = BPF_CORE_READ(t, fs, pwd.mnt);
	if (BPF_CORE_READ(c, mnt_sb) == sb && BPF_CORE_READ(c, mnt_root) == sroot)
		return c;
	c = BPF_CORE_READ(t, fs, root.mnt);
	if (BPF_CORE_READ(c, mnt_sb) == sb && BPF_CORE_READ(c, mnt_root) == sroot)
		return c;
	return NULL;
}

/*
 * move_mount(2): from_path is usually open_tree(2)'s copy, to_path the
 * mount point. Reported as a bind, as on the tracepoint backend, with the
 * source's identity. The copy is a tree of its own (an anonymous
 * namespace), where the source's dentry would walk to "/" (which covers
 * everything); its path is walked through a mount of the caller's
 * namespace that shows the same filesystem, or left empty.
 */
SEC("lsm/move_mount")
int BPF_PROG(lsm_move_mount, const struct path *from_path, const struct path *to_path, int ret)
{
	if (ret)
		return ret;
	if (!current_tracked())
		return 0;
	struct fop_acc a = {.noise = 1};
	struct file_id id = {};
	struct task_struct *t = bpf_get_current_task_btf();
	struct dentry *d = BPF_CORE_READ(from_path, dentry);
	struct vfsmount *m = BPF_CORE_READ(from_path, mnt);
	struct mount *fm = container_of(m, struct mount, mnt);
	if (BPF_CORE_READ(fm, mnt_ns) != BPF_CORE_READ(t, nsproxy, mnt_ns))
		m = ns_mount_of(t, m);
	if (m)
		fop_walk(&a, 0, m, d);
	fop_walk(&a, 1, BPF_CORE_READ(to_path, mnt), BPF_CORE_READ(to_path, dentry));
	inode_id(BPF_CORE_READ(d, d_inode), &id);
	return fop_emit(FOP_MOUNT, MS_BIND_, &a, &id);
}
