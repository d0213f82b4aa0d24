/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What every agentwatch BPF object shares: the session membership map, the
 * ring buffer and its drop counters, per-CPU scratch, path resolution and
 * the in-kernel noise filter. Each object (tracepoints, LSM, ...) includes
 * this; the loader hands the maps of the first object to the others, so
 * there is one `tracked` map and one ring buffer however many objects run.
 */
#ifndef AGENTWATCH_COMMON_H
#define AGENTWATCH_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "events.h"

#define MAX_ARGS_BYTES 8192  /* compile-time cap; config max_args_bytes <= this */
#define MAX_FILENAME   1024
#define PATH_MAX_LEN   4096
#define PATH_END       4096  /* the dentry walk writes backwards and ends here */
#define PATH_SCRATCH   16384 /* twice the masked range, so masked reads stay inside */
#define PATH_MASK      (8192 - 1)
#define MAX_COMPONENTS 96
#define NAME_KEY_LEN   32
#define PREFIX_KEY_LEN 64
#define EV_DATA_MASK   (16384 - 1)  /* per-CPU values are capped at 32 KiB */
#define EV_DATA_SIZE   (16384 + 8192)
#define AT_FDCWD_       -100

/* Keeps clang from reusing an unbounded copy of a checked variable. */
#ifndef barrier_var
#define barrier_var(var) asm volatile("" : "+r"(var))
#endif

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((void *)(ptr) - __builtin_offsetof(type, member)))
#endif

/* Load-time configuration (set through the spec's variables). */
const volatile __u32 cfg_max_args = 4096;


#define TRACKED_PENDING 1

struct tracked {
	__u64 start;
	__u32 flags;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22); /* overridden from config at load */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768); /* overridden from config at load */
	__type(key, __u32);
	__type(value, struct tracked);
} tracked SEC(".maps");

struct name_key {
	char name[NAME_KEY_LEN];
};



/* Directory names that make a path noise wherever they appear. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct name_key);
	__type(value, __u8);
} noise_names SEC(".maps");

struct prefix_key {
	__u32 prefixlen; /* bits */
	char data[PREFIX_KEY_LEN];
};

/* Absolute path prefixes that are noise (stored with a trailing '/'). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 256);
	__type(key, struct prefix_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} noise_prefixes SEC(".maps");

/* Ring-buffer reserve/output failures, per CPU, per event kind. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EV_KIND_MAX);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

enum stat_idx {
	STAT_NOISE_DROPPED = 0,  /* file opens dropped as noise */
	STAT_INFLIGHT_FULL = 1,  /* syscall entry could not be stashed */
	STAT_TRACKED_FULL = 2,   /* a session process could not be tracked */
	STAT_NOISE_FILE = 3,     /* opens of an exact noise file (noise.files) */
	STAT_FAILED_DROPPED = 4, /* failed opens of paths no keep entry names */
	STAT_OPATH_DROPPED = 5,  /* O_PATH opens of paths no keep entry names */
	STAT_FOP_DROPPED = 6,    /* unlinks and failed file changes no keep entry names */
	STAT_NOISE_DIR_HIT = 7,  /* of STAT_NOISE_DROPPED: known noise directories, no walk */
	STAT_MAX = 8,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* Syscall arguments stashed at entry, consumed at exit. */
struct inflight {
	__u64 uptr;
	__u64 uptr2; /* file ops: the second path */
	__s32 dfd;
	__s32 dfd2;
	__u32 flags;
	__u32 mode;
	__u16 syscall;
	__u16 family;
	__u16 port;
	__u16 sock_type;
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct inflight);
} inflight SEC(".maps");

/*
 * The sockets of session processes, marked by the cgroup sock_addr
 * programs at connect and at an addressed send, where the process is
 * current. What happens to a socket later runs where no process is
 * (cgroup_skb on a softirq, a TCP state change on a timer): it is
 * attributed to the owner found here. Socket-local storage is freed with
 * the socket, and a socket outside every session has none, so the lookup
 * is one pointer test for the rest of the host.
 */
struct sock_owner {
	__u32 tgid;
	__u32 tid;
	__u64 start; /* the owner's leader start_boottime: the session key */
	/*
	 * The last connect (cgroup/connect4|6), for the record of how the
	 * connection ended (tp_btf/inet_sock_set_state in agentwatch.bpf.c).
	 * A send (sendmsg4|6) creates the storage without SOCK_OWNER_CONNECT.
	 */
	__u64 connect_ts; /* CLOCK_BOOTTIME ns */
	__u16 family;
	__u16 port;       /* host order */
	__u8 flags;       /* SOCK_OWNER_* */
	__u8 _pad[3];
	__u8 addr[16];    /* IPv4 in the first 4 bytes */
};

#define SOCK_OWNER_CONNECT  1 /* connect_ts, family, port, addr are set */
#define SOCK_OWNER_REPORTED 2 /* that connection's end was reported */

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sock_owner);
} sess_socks SEC(".maps");

/* inflight.sock_type of lsm/socket_connect's marker: the connect the
 * cgroup connect program then sees is one the LSM hook reported. */
#define INFLIGHT_LSM_MARK 0xffff

struct path_buf {
	char buf[PATH_SCRATCH];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_buf);
} path_scratch SEC(".maps");

/* A record is its fixed struct followed directly by its variable data. */
struct ev_buf {
	char raw[sizeof(struct exec_event) + EV_DATA_SIZE];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ev_buf);
} ev_scratch SEC(".maps");

static __always_inline void count(void *map, __u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(map, &idx);
	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline __u64 leader_start(struct task_struct *t)
{
	return BPF_CORE_READ(t, group_leader, start_boottime);
}

static __always_inline void fill_hdr(struct event_hdr *h, __u8 kind, struct task_struct *t)
{
	h->kind = kind;
	h->version = EVENT_VERSION;
	h->flags = 0;
	h->pid = BPF_CORE_READ(t, tgid);
	h->tid = BPF_CORE_READ(t, pid);
	h->_pad = 0;
	h->ts = bpf_ktime_get_boot_ns();
	h->start = leader_start(t);
}

/* ---- path resolution: walk dentries up to the root, writing backwards ---- */

struct walk_ctx {
	struct dentry *d;
	struct mount *mnt;
	__u32 off;   /* start of the path written so far in path_scratch */
	__u8 truncated;
	__u8 noise;
	__u8 noise_dir; /* a directory above the leaf has a noise name */
	__u32 leaf_off; /* where the leaf's "/name" starts; 0 when none */
};

static long walk_step(__u32 i, struct walk_ctx *c)
{
	__u32 zero = 0;
	struct path_buf *pb = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!pb)
		return 1;

	struct dentry *d = c->d;
	struct mount *m = c->mnt;
	struct dentry *parent = BPF_CORE_READ(d, d_parent);
	struct dentry *mnt_root = BPF_CORE_READ(m, mnt.mnt_root);

	/*
	 * A dentry that is its own parent but not its mount's root has no
	 * place in any tree: a memfd's or another pseudo file's, or one a
	 * handle reached disconnected. Its name is all there is to report.
	 */
	int pseudo = d == parent && d != mnt_root;
	if (!pseudo && (d == mnt_root || d == parent)) {
		struct mount *mp = BPF_CORE_READ(m, mnt_parent);
		if (mp == m || d != mnt_root)
			return 1; /* reached the root of this namespace */
		c->d = BPF_CORE_READ(m, mnt_mountpoint);
		c->mnt = mp;
		return 0;
	}

	struct qstr q = BPF_CORE_READ(d, d_name);
	__u32 len = q.len;
	if (len > 255)
		len = 255;
	if (c->off <= len + 1) {
		c->truncated = 1;
		return 1;
	}
	__u32 off = c->off - len - 1;
	if (off >= PATH_END)
		return 1;
	__u32 at = off;
	barrier_var(at);
	pb->buf[at & PATH_MASK] = '/';
	at += 1;
	barrier_var(at);
	barrier_var(len);
	bpf_probe_read_kernel(&pb->buf[at & PATH_MASK], len & 255, q.name);
	c->off = off;
	if (i == 0)
		c->leaf_off = off;

	if (len < NAME_KEY_LEN) {
		struct name_key k = {};
		__u32 kl = len;
		barrier_var(kl);
		bpf_probe_read_kernel(k.name, kl & (NAME_KEY_LEN - 1), q.name);
		if (bpf_map_lookup_elem(&noise_names, &k)) {
			c->noise = 1;
			if (i)
				c->noise_dir = 1;
		}
	}
	if (pseudo)
		return 1;
	c->d = parent;
	return 0;
}

/*
 * Writes the absolute path of p so that it ends at PATH_END in path_scratch.
 * Returns the start offset; the root alone yields PATH_END (empty string).
 */
static __always_inline void walk(struct path *p, struct walk_ctx *c)
{
	struct vfsmount *vfs = p->mnt;
	c->d = p->dentry;
	c->mnt = container_of(vfs, struct mount, mnt);
	c->off = PATH_END;
	long n = bpf_loop(MAX_COMPONENTS, walk_step, c, 0);
	if (n >= MAX_COMPONENTS)
		c->truncated = 1; /* deeper than we walk */
}

static __always_inline __u32 walk_path(struct path *p, __u8 *truncated, __u8 *noise)
{
	struct walk_ctx c = {};
	walk(p, &c);
	*truncated |= c.truncated;
	*noise |= c.noise;
	return c.off;
}

/*
 * walk_path for a path reported on its own: the root is "/", not empty.
 * (walk_path keeps the empty root for joining a relative name to it.)
 */
static __always_inline __u32 walk_abs(struct path *p, struct path_buf *pb, __u8 *truncated, __u8 *noise)
{
	__u32 start = walk_path(p, truncated, noise);
	if (start == PATH_END) {
		start = PATH_END - 1;
		pb->buf[start & PATH_MASK] = '/';
	}
	return start;
}

/* The LPM key of path_scratch[start, end), cut to a key's length. */
static __always_inline void path_key(struct prefix_key *k, struct path_buf *pb, __u32 start, __u32 end)
{
	__u32 len = end - start;
	if (len > PREFIX_KEY_LEN)
		len = PREFIX_KEY_LEN;
	/* bytes past len are ignored: the lookup only compares prefixlen bits */
	bpf_probe_read_kernel(k->data, PREFIX_KEY_LEN, &pb->buf[start & PATH_MASK]);
	k->prefixlen = len * 8;
}

/* Noise test of a byte string in path_scratch[start, end): LPM prefixes. */
static __always_inline int prefix_is_noise(struct path_buf *pb, __u32 start, __u32 end)
{
	struct prefix_key k = {};
	if (end < start)
		return 0;
	path_key(&k, pb, start, end);
	return bpf_map_lookup_elem(&noise_prefixes, &k) != NULL;
}

/* Sensitive basename prefixes (".env", "credentials", "id_rsa"): failed
 * opens and unlinks of such names are kept whatever the budget drops. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 256);
	__type(key, struct prefix_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} keep_names SEC(".maps");

#define O_ACCMODE_ 03
#define O_CREAT_   0100
#define O_TRUNC_   01000

/* The open only reads: a write, create or truncate of a noise file is not
 * noise (a line added to /etc/ld.so.preload is persistence). */
static __always_inline int open_reads_only(__u32 flags)
{
	return (flags & O_ACCMODE_) == 0 && !(flags & (O_CREAT_ | O_TRUNC_));
}

#define OPEN_CLS_NOISE 1 /* an exact noise file (stored with its NUL) */
#define OPEN_CLS_KEEP  2 /* a sensitive prefix: failed and O_PATH opens kept */

/* Exact noise files and sensitive prefixes, longest match wins. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct prefix_key);
	__type(value, __u32); /* OPEN_CLS_* | entry length << 8 */
	__uint(map_flags, BPF_F_NO_PREALLOC);
} open_class SEC(".maps");

/*
 * The value carries the entry's length: an exact entry only matches the
 * whole path, not a path it is a prefix of. Paths longer than a key can
 * only hit prefixes. k is the caller's (initialised) key scratch: one key
 * per program keeps its stack under the verifier's limit.
 */
static __always_inline __u8 open_class_of(struct prefix_key *k, struct path_buf *pb, __u32 start, __u32 end)
{
	if (end <= start)
		return 0;
	path_key(k, pb, start, end);
	__u32 *v = bpf_map_lookup_elem(&open_class, k);
	if (!v)
		return 0;
	__u8 cls = *v & 0xff;
	if (cls == OPEN_CLS_NOISE && (*v >> 8) != end - start)
		return 0;
	return cls;
}

/*
 * Scan of a caller's path string (at the fixed offset RAW_AT) for noise
 * directory names and "..". Segments are compared by FNV-1a hash so that no
 * address depends on loop state: the verifier then converges quickly.
 */
#define RAW_AT (PATH_END + 1)
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME  0x100000001b3ULL

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u64); /* FNV-1a of the name */
	__type(value, __u8);
} noise_name_hashes SEC(".maps");

struct scan_ctx {
	__u64 h;
	__u32 len; /* string length from RAW_AT */
	__u32 seglen;
	__u32 last; /* offset of the last segment (the basename) from RAW_AT */
	__u8 noise;
	__u8 dotdot;
};

static long scan_step(__u32 i, struct scan_ctx *c)
{
	__u32 zero = 0;
	struct path_buf *pb = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!pb || i > c->len)
		return 1;
	char ch = '/';
	if (i < c->len)
		ch = pb->buf[(RAW_AT + i) & PATH_MASK];
	if (ch == '/') {
		__u64 h = c->h;
		if (c->seglen == 2 && h == ((((FNV_OFFSET ^ '.') * FNV_PRIME) ^ '.') * FNV_PRIME))
			c->dotdot = 1;
		else if (c->seglen && bpf_map_lookup_elem(&noise_name_hashes, &h))
			c->noise = 1;
		c->h = FNV_OFFSET;
		c->seglen = 0;
		if (i < c->len)
			c->last = i + 1;
		return 0;
	}
	c->h = (c->h ^ (__u8)ch) * FNV_PRIME;
	c->seglen++;
	return 0;
}

static __always_inline struct file *fd_file(struct task_struct *t, int fd)
{
	struct file *f = NULL;
	if (fd < 0)
		return NULL;
	/* t is a BTF pointer: direct loads, no helper call per field */
	struct files_struct *files = t->files;
	if (!files)
		return NULL;
	struct fdtable *fdt = files->fdt;
	if (!fdt || (unsigned int)fd >= fdt->max_fds)
		return NULL;
	struct file **arr = fdt->fd;
	bpf_probe_read_kernel(&f, sizeof(f), &arr[fd]);
	return f;
}

/* ---- identity: what a file is, whatever it is called ---- */

struct file_id {
	__u64 ino;
	__u32 dev; /* s_dev, kernel encoding (major << 20 | minor) */
	__u32 _pad;
};

/*
 * The sensitive files by identity, filled by the receiver from the
 * sensitive globs (and from what sessions create, rename or link into
 * place): a hard link, a rename, a bind mount, another mount namespace, a
 * handle or /proc/<pid>/root reach the same inode under another path.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384); /* overridden from config at load */
	__type(key, struct file_id);
	__type(value, __u8);
} sensitive_ids SEC(".maps");

const volatile __u8 cfg_identity = 1; /* 0: path-only (the identity benchmark's baseline) */

static __always_inline void inode_id(struct inode *ino, struct file_id *id)
{
	id->ino = BPF_CORE_READ(ino, i_ino);
	id->dev = BPF_CORE_READ(ino, i_sb, s_dev);
	id->_pad = 0;
}

static __always_inline int id_sensitive(struct file_id *id)
{
	return cfg_identity && bpf_map_lookup_elem(&sensitive_ids, id) != NULL;
}

#define PROC_SUPER_MAGIC_ 0x9fa0

/*
 * An open of /proc/<pid>/environ or mem (also under task/<tid>/) of a
 * process other than the caller: its secrets or its memory. Returns the
 * pid, 0 otherwise. /proc/self and the rest of /proc stay noise.
 */
static __always_inline __u32 proc_other(struct file *f)
{
	struct inode *ino = BPF_CORE_READ(f, f_inode);
	if (BPF_CORE_READ(ino, i_sb, s_magic) != PROC_SUPER_MAGIC_)
		return 0;
	char name[8] = {};
	bpf_probe_read_kernel_str(name, sizeof(name), BPF_CORE_READ(f, f_path.dentry, d_name.name));
	int environ = name[0] == 'e' && name[1] == 'n' && name[2] == 'v' && name[3] == 'i' &&
		      name[4] == 'r' && name[5] == 'o' && name[6] == 'n' && name[7] == 0;
	int mem = name[0] == 'm' && name[1] == 'e' && name[2] == 'm' && name[3] == 0;
	if (!environ && !mem)
		return 0;
	struct proc_inode *pi = container_of(ino, struct proc_inode, vfs_inode);
	struct pid *pid = BPF_CORE_READ(pi, pid);
	if (!pid)
		return 0; /* /proc/sys/.../mem-like names have no task */
	__u32 nr = BPF_CORE_READ(pid, numbers[0].nr);
	__u64 self = bpf_get_current_pid_tgid();
	if (!nr || nr == (__u32)(self >> 32) || nr == (__u32)self)
		return 0;
	return nr;
}

/* ---- the caller's path strings ---- */

struct upath {
	__u32 start, end; /* the absolute path in path_scratch */
	__u32 base_at, base_len; /* its last segment: offset in path_scratch, length */
	__u8 trunc, noise, dotdot;
};

/*
 * Reads the caller's string at uptr into path_scratch and makes it absolute
 * against the cwd (AT_FDCWD) or dirfd, as the kernel would resolve it:
 * [start, end) is "<base walk>/<string>" or the string itself if absolute.
 * With raw, a relative string stays as given (mount's "tmpfs"). Scans the
 * string for noise directory names and "..". Returns 0, or -1 when there
 * is no string.
 */
static __always_inline int user_path(struct task_struct *t, __u64 uptr, int dfd, int raw, struct path_buf *pb, struct upath *u)
{
	long n = bpf_probe_read_user_str(&pb->buf[RAW_AT], PATH_MAX_LEN - 1, (void *)uptr);
	if (n <= 1)
		return -1;
	u->end = RAW_AT + n - 1; /* excludes the NUL */
	if (pb->buf[RAW_AT] == '/' || raw) {
		u->start = RAW_AT;
	} else {
		struct path base = {};
		if (dfd == AT_FDCWD_) {
			base = BPF_CORE_READ(t, fs, pwd);
		} else {
			struct file *df = fd_file(t, dfd);
			if (!df)
				return -1;
			base = BPF_CORE_READ(df, f_path);
		}
		u->start = walk_path(&base, &u->trunc, &u->noise);
		pb->buf[PATH_END] = '/';
	}
	struct scan_ctx sc = {.h = FNV_OFFSET, .len = n - 1};
	bpf_loop(PATH_MAX_LEN, scan_step, &sc, 0);
	u->noise |= sc.noise;
	u->base_at = RAW_AT + sc.last;
	u->base_len = sc.len > sc.last ? sc.len - sc.last : 0;
	u->dotdot = sc.dotdot;
	return 0;
}

/* ---- membership ---- */

static __always_inline struct tracked *lookup_tracked(__u32 tgid)
{
	return bpf_map_lookup_elem(&tracked, &tgid);
}

static __always_inline int current_tracked(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	return lookup_tracked(tgid) != NULL;
}



/*
 * Ring buffer wakeups. A record that finds the consumer caught up wakes it
 * by default, through an irq_work self-interrupt: for a session opening
 * files as fast as it can that is one interrupt and one collector wakeup
 * per open, which costs more than the open (3.9 µs of the program's 4 µs
 * were measured in the output helper here). Records of what processes are
 * (exec, fork, exit) and verdicts wake the collector at once: TLS probes
 * are attached per process and a verdict is news. The rest wait until
 * cfg_wakeup_bytes are pending, or for the collector's next timed read
 * (the receiver reads at least every flush interval). 0 wakes for every
 * record, as the kernel does by default.
 */
const volatile __u64 cfg_wakeup_bytes = 0;

static __always_inline __u64 wake_flags(__u8 kind)
{
	if (!cfg_wakeup_bytes)
		return 0;
	if (kind == EV_EXEC || kind == EV_FORK || kind == EV_EXIT || kind == EV_ENFORCE)
		return BPF_RB_FORCE_WAKEUP;
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= cfg_wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

static __always_inline void emit(void *data, __u64 size, __u8 kind)
{
	if (bpf_ringbuf_output(&events, data, size, wake_flags(kind)))
		count(&drops, kind);
}

/*
 * Copies path_scratch[start, end) to data (the payload of an open or
 * enforce record); returns its length, 0 when the range is not a path.
 */
static __always_inline __u32 copy_path(char *data, struct path_buf *pb, __u32 start, __u32 end)
{
	__u32 len = end - start;
	if (end < start || len > PATH_MAX_LEN - 1)
		len = 0;
	barrier_var(len);
	len &= PATH_MAX_LEN - 1;
	barrier_var(start);
	bpf_probe_read_kernel(data, len, &pb->buf[start & PATH_MASK]);
	return len;
}

/* ---- process lifecycle ---- */

/* Appends path_scratch[start, end) at ev->data[off]; returns bytes copied. */
static __always_inline __u32 append_path(char *data, __u32 off, struct path_buf *pb, __u32 start, __u32 end, __u8 *trunc)
{
	__u32 len = end - start;
	if (end < start || len > PATH_MAX_LEN - 1 || off > EV_DATA_MASK)
		return 0;
	if (len > EV_DATA_MASK - off) {
		len = EV_DATA_MASK - off;
		*trunc = 1;
	}
	barrier_var(len);
	len &= PATH_MAX_LEN - 1;
	barrier_var(off);
	barrier_var(start);
	bpf_probe_read_kernel(&data[off & EV_DATA_MASK], len, &pb->buf[start & PATH_MASK]);
	return len;
}

#endif
