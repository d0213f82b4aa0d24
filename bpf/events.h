/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Wire format between the kernel programs and the receiver's decoder
 * (receiver/agentsessionreceiver/internal/kevent). Every record starts with
 * struct event_hdr; variable parts follow the fixed part and are sized by
 * their real length. Change both sides together and bump EVENT_VERSION.
 */
#ifndef AGENTWATCH_EVENTS_H
#define AGENTWATCH_EVENTS_H

#define EVENT_VERSION 2

enum event_kind {
	EV_EXEC = 1,
	EV_EXIT = 2,
	EV_FORK = 3,
	EV_OPEN = 4,
	EV_CONNECT = 5,
	EV_ENFORCE = 6, /* enforce.h: an open or connect denied, killed, or (monitor) audited */
	/* 7 is free */
	EV_DNS = 8, /* intent.bpf.c: a DNS message sent or received */
	EV_TLS = 9, /* intent.bpf.c: a chunk of TLS plaintext */
	EV_KIND_MAX = 16, /* array size for per-kind counters */
};

/* event_hdr.flags */
#define F_EXEC_MATCHED     (1 << 0) /* kernel matcher started a session */
#define F_EXEC_CANDIDATE   (1 << 1) /* userspace must decide (argv/cgroup/glob) */
#define F_ARGS_TRUNCATED   (1 << 2)
#define F_PATH_TRUNCATED   (1 << 3) /* file path, exe path or cwd was cut */
#define F_PATH_RAW         (1 << 4) /* open path is the caller's string, not resolved by the kernel */
#define F_PATH_DOTDOT      (1 << 5) /* raw path had a ".." segment: not noise-filtered in kernel */

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
	__u16 home_len; /* HOME= of the new image's environment, 0 when unset */
	__u16 _pad;
	__u64 pstart;
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
	/* then: path */
};

enum open_syscall {
	SYS_OPENAT = 1,
	SYS_OPENAT2 = 2,
	SYS_OPEN = 3,
	SYS_CREAT = 4,
	SYS_LSM_FILE_OPEN = 5, /* lsm.bpf.c: seen by lsm/file_open, ret is the verdict */
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

#endif
