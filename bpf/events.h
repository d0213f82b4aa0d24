/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Wire format between the kernel programs and the receiver's decoder
 * (receiver/agentsessionreceiver/internal/kevent). Every record starts with
 * struct event_hdr; variable parts follow the fixed part and are sized by
 * their real length. Change both sides together and bump EVENT_VERSION.
 */
#ifndef AGENTWATCH_EVENTS_H
#define AGENTWATCH_EVENTS_H

#define EVENT_VERSION 3

enum event_kind {
	EV_EXEC = 1,
	EV_EXIT = 2,
	EV_FORK = 3,
	EV_OPEN = 4,
	EV_CONNECT = 5,
	EV_ENFORCE = 6, /* enforce.h: an open or connect denied, killed, or (monitor) audited */
	EV_FILE_OP = 7, /* a link, rename, unlink, chmod or mount by a session process */
	EV_DNS = 8, /* intent.bpf.c: a DNS message sent or received */
	EV_TLS = 9, /* intent.bpf.c: a chunk of TLS plaintext */
	EV_CONN_CLOSE = 10, /* a TCP connection a session process connected has ended */
	EV_KIND_MAX = 16, /* array size for per-kind counters */
};

/* event_hdr.flags */
#define F_EXEC_MATCHED     (1 << 0) /* kernel matcher started a session */
#define F_EXEC_CANDIDATE   (1 << 1) /* userspace must decide (argv/cgroup/glob) */
#define F_ARGS_TRUNCATED   (1 << 2)
#define F_PATH_TRUNCATED   (1 << 3) /* file path, exe path or cwd was cut */
#define F_PATH_RAW         (1 << 4) /* open path is the caller's string, not resolved by the kernel */
#define F_PATH_DOTDOT      (1 << 5) /* raw path had a ".." segment: not noise-filtered in kernel */
#define F_EXE_UNLINKED     (1 << 6) /* exec: the image has no name on disk (memfd, deleted file) */
#define F_ID_SENSITIVE     (1 << 7) /* open: the file's (dev, ino) is in sensitive_ids */
#define F_PROC_OTHER       (1 << 8) /* open: /proc/<pid>/environ or mem of another process */
#define F_SOCK_CGROUP      (1 << 9)  /* connect: seen by cgroup/connect4|6 (io_uring, TCP Fast Open) */
#define F_SOCK_SEND        (1 << 10) /* connect: an addressed UDP send, seen by cgroup/sendmsg4|6 */

struct event_hdr {
	__u8 kind;
	__u8 version;
	__u16 flags;
	__u32 pid;   /* tgid */
	__u32 tid;
	__u32 _pad;
	__u64 ts;    /* CLOCK_BOOTTIME ns */
	__u64 start; /* start_boottime of the thread-group leader, ns */
};

struct exec_event {
	struct event_hdr hdr;
	__u32 ppid;
	__u32 uid;
	__u32 euid;
	__u16 home_len;  /* HOME= of the new image's environment, 0 when unset */
	__u16 args_tail; /* argv was cut: its last args_tail bytes are argv's end */
	__u64 pstart;
	__u64 stdin_pipe;  /* pipefs inode of fd 0, 0 when fd 0 is no pipe */
	__u64 stdout_pipe; /* pipefs inode of fd 1 */
	__u16 exe_len;
	__u16 filename_len;
	__u16 args_len;
	__u16 cwd_len;
	/* then: exe path, invoked filename, argv (NUL separated), cwd, HOME value */
};

struct exit_event {
	struct event_hdr hdr;
	__u32 exit_code; /* wait(2) status encoding */
	__u32 _pad;
};

struct fork_event {
	struct event_hdr hdr; /* the child */
	__u32 ppid;
	__u32 _pad;
	__u64 pstart;
};

struct open_event {
	struct event_hdr hdr;
	__s32 ret;
	__u32 open_flags;
	__u32 mode;
	__u16 path_len;
	__u16 syscall; /* enum open_syscall */
	__u64 ino;     /* the file opened; 0 when the open failed */
	__u32 dev;     /* its superblock's s_dev (kernel encoding) */
	__u32 target;  /* F_PROC_OTHER: the pid whose environ/mem it is */
	/* then: path */
};

enum open_syscall {
	SYS_OPENAT = 1,
	SYS_OPENAT2 = 2,
	SYS_OPEN = 3,
	SYS_CREAT = 4,
	SYS_LSM_FILE_OPEN = 5, /* lsm.bpf.c: seen by lsm/file_open, ret is the verdict */
	SYS_OPEN_BY_HANDLE = 6,
	SYS_IO_URING = 7, /* io_uring IORING_OP_OPENAT/OPENAT2, at its completion */
};

/* file_op_event.op */
enum file_op {
	FOP_LINK = 1,
	FOP_RENAME = 2,
	FOP_UNLINK = 3,
	FOP_CHMOD = 4,
	FOP_MOUNT = 5, /* mount(2), move_mount(2) */
};

/*
 * A change of a file by a session process. path is the file changed (the
 * source of a link, rename or mount), path2 the name it gets (link,
 * rename) or the mount point. Paths are the caller's strings made absolute
 * against its cwd or dirfd (F_PATH_RAW), or resolved from an fd.
 */
struct file_op_event {
	struct event_hdr hdr;
	__s32 ret;
	__u16 op;        /* enum file_op */
	__u16 path_len;
	__u16 path2_len;
	__u16 _pad;
	__u32 mode;      /* chmod: the mode; mount: MS_* flags */
	__u64 ino;       /* when the kernel had the file (fchmod): its identity */
	__u32 dev;
	__u32 _pad2;
	/* then: path, path2 */
};

struct connect_event {
	struct event_hdr hdr;
	__s32 ret;
	__u16 family;
	__u16 port; /* host order */
	__u8 addr[16];
	__u16 sock_type;
	__u16 _pad;
	__u32 _pad2;
};

/* enforce_event.what */
#define ENF_WHAT_OPEN    1
#define ENF_WHAT_CONNECT 2

/* enforce_event.action */
#define ENF_ACT_AUDIT 1 /* monitor mode: would have been denied */
#define ENF_ACT_DENY  2 /* the LSM hook returned -EPERM */
#define ENF_ACT_KILL  3 /* SIGKILL sent (the syscall itself may still complete) */

/* A rule of the receiver's `enforce:` config matched a session process. */
struct enforce_event {
	struct event_hdr hdr;
	__u32 rule;     /* rule id, index into the receiver's rule table */
	__u8 what;      /* ENF_WHAT_* */
	__u8 action;    /* ENF_ACT_* */
	__u16 family;   /* connect: AF_INET / AF_INET6 */
	__u16 port;     /* connect: host order */
	__u16 path_len; /* open: bytes of path that follow */
	__u32 _pad;
	__u8 addr[16];  /* connect: IPv4 in the first 4 bytes */
	/* then: path */
};

/* dns_event.dir */
#define DNS_DIR_SENT 0
#define DNS_DIR_RECV 1

/* One DNS message (UDP datagram, or TCP segment with its length prefixes). */
struct dns_event {
	struct event_hdr hdr;
	__u64 conn;     /* struct sock *: keys TCP streams */
	__u32 total;    /* bytes the syscall moved; len may be less */
	__u16 len;      /* payload bytes that follow */
	__u16 family;   /* AF_INET / AF_INET6 */
	__u16 port;     /* resolver port, host order */
	__u8 dir;       /* DNS_DIR_* */
	__u8 transport; /* SOCK_STREAM=1 (TCP), SOCK_DGRAM=2 (UDP) */
	__u8 addr[16];  /* resolver address */
	__u32 _pad;
	/* then: payload */
};

/* tls_event.dir */
#define TLS_DIR_WRITE 0 /* SSL_write*: what the process sent */
#define TLS_DIR_READ  1 /* SSL_read*: what it received */

/* A chunk of the plaintext of one SSL_read/SSL_write call. */
struct tls_event {
	struct event_hdr hdr;
	__u64 conn;      /* the SSL *: identifies the connection within the process */
	__u32 total;     /* bytes the call moved */
	__u32 offset;    /* of this chunk within the call */
	__u16 len;       /* bytes that follow */
	__u8 dir;        /* TLS_DIR_* */
	__u8 truncated;  /* the call moved more than the capture cap */
	__u32 _pad;
	/* then: data */
};

/*
 * How a TCP connection a session process connected ended, once per
 * connect: when the connect failed (SYN_SENT -> CLOSE), or when the local
 * side is done with an established one (closed in both directions:
 * close(2), or its exit; FIN_WAIT1/2, CLOSING or LAST_ACK with
 * sk_shutdown == SHUTDOWN_MASK), or when it ended otherwise (-> CLOSE: a
 * reset, a timeout). The header names the socket's owner (sess_socks):
 * the record may come from a softirq or a timer, or after the owner's
 * exit record (exit closes its files after sched_process_exit). The
 * counters are the kernel's raw ones; the receiver takes the SYN and FIN
 * out (kevent.ConnClose).
 */
struct conn_close_event {
	struct event_hdr hdr;
	__u64 connect_ts;     /* CLOCK_BOOTTIME ns of the connect */
	__u64 bytes_acked;    /* tcp_sock.bytes_acked: counts the SYN, and the FIN once acked */
	__u64 bytes_received; /* tcp_sock.bytes_received: counts the peer's FIN */
	__u32 snd_una;
	__u32 write_seq;      /* write_seq - snd_una: written, not acked (and the FIN) */
	__s32 sk_err;         /* the error that ended it (positive errno), 0 for none */
	__u16 family;
	__u16 port;           /* host order */
	__u8 addr[16];        /* IPv4 in the first 4 bytes */
	__u8 oldstate;        /* TCP_* of the transition reported */
	__u8 newstate;
	__u8 fin_rcvd;        /* SOCK_DONE: the peer's FIN came */
	__u8 _pad;
	__u32 _pad2;
};

#endif
