//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * agentwatch intent layer: what a session asked the network for (DNS) and
 * what it said to and heard from TLS peers (plaintext at SSL_read/SSL_write).
 *
 * A separate object from the lifecycle programs so that it can fail to load
 * or attach on its own without taking the session tracking down. At load
 * the loader replaces this object's copies of the shared maps (tracked,
 * events, drops, ...) by the main object's, so membership and the ring
 * buffer are one.
 *
 * Only tracked processes produce events; for everyone else each program
 * costs one hash lookup.
 */
#include "common.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET_   2
#define AF_INET6_  10
#define S_IFMT_    00170000
#define S_IFSOCK_  0140000
#define SOCK_STREAM_ 1
#define SOCK_DGRAM_  2

/*
 * DNS payload copied per message. 1232 bytes is the EDNS buffer size the
 * DNS flag day settled on: a UDP answer larger than that is truncated by
 * resolvers anyway (TC bit, retry over TCP). Only the first iovec of a
 * sendmsg/recvmsg is read: stub resolvers put the whole message there.
 */
#define DNS_MAX      1232
#define DNS_MASK     2047
#define MAX_MMSG     4    /* messages looked at per sendmmsg/recvmmsg (glibc sends A+AAAA in one) */
#define MAX_DNS_PORTS 4

/* TLS plaintext goes out in chunks of this size (one ring record each). */
#define TLS_CHUNK    8192
#define TLS_MAX_CAP  (1 << 20) /* hard cap per call; config is at most this */

/* Load-time configuration. */
const volatile __u16 cfg_dns_ports[MAX_DNS_PORTS] = {53, 0, 0, 0};
const volatile __u32 cfg_tls_max = 65536;

enum intent_stat {
	IST_DNS_SENT = 0,      /* DNS messages captured going out */
	IST_DNS_RECV = 1,      /* DNS messages captured coming in */
	IST_TLS_CALLS = 2,     /* SSL_* calls of tracked processes captured */
	IST_TLS_TRUNC = 3,     /* calls cut at cfg_tls_max */
	IST_TLS_ARGS_FULL = 4, /* entry could not stash its arguments */
	IST_DNS_ARGS_FULL = 5,
	IST_MAX = 8,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, IST_MAX);
	__type(key, __u32);
	__type(value, __u64);
} intent_stats SEC(".maps");

/* Fires per uprobe target (the attach cookie is the target's index). */
#define MAX_TLS_TARGETS 256
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_TLS_TARGETS);
	__type(key, __u32);
	__type(value, __u64);
} tls_fires SEC(".maps");

/* Own scratch: a uprobe may be preempted by a syscall program on this CPU. */
struct intent_buf {
	char raw[sizeof(struct tls_event) + TLS_CHUNK + DNS_MASK + 1];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct intent_buf);
} intent_scratch SEC(".maps");

/* ------------------------------------------------------------------ DNS */

enum dns_call {
	DC_PLAIN = 0, /* read/recvfrom: buf is the payload */
	DC_MSG = 1,   /* recvmsg: arg is a user_msghdr */
	DC_MMSG = 2,  /* recvmmsg: arg is an array of mmsghdr */
};

struct dns_peer {
	__u64 sk;
	__u16 family;
	__u16 port;     /* host order; 0 while unknown (unconnected socket) */
	__u8 transport;
	__u8 _pad[3];
	__u8 addr[16];
};

/* A receive of a DNS-candidate socket, stashed at entry. */
struct dns_recv {
	struct dns_peer peer;
	__u64 arg;   /* buffer, msghdr or mmsghdr array */
	__u64 uaddr; /* recvfrom's source address buffer (unconnected UDP) */
	__u32 size;
	__u8 call;
	__u8 _pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct dns_recv);
} dns_recvs SEC(".maps");

static __always_inline int dns_port(__u16 port)
{
	if (!port)
		return 0;
#pragma unroll
	for (int i = 0; i < MAX_DNS_PORTS; i++)
		if (cfg_dns_ports[i] == port)
			return 1;
	return 0;
}

/*
 * Classifies fd: 1 for an AF_INET/6 socket (peer filled from the socket's
 * connected address, port 0 when unconnected), 0 otherwise. This is the
 * cost every read/write of a session process pays: the fd table, the inode
 * mode and, for sockets, the sock.
 */
static __always_inline int inet_socket(int fd, struct dns_peer *p)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct file *f = fd_file(t, fd);
	if (!f)
		return 0;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT_) != S_IFSOCK_)
		return 0;
	struct socket *sock = (struct socket *)BPF_CORE_READ(f, private_data);
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return 0;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET_ && family != AF_INET6_)
		return 0;
	__u16 type = BPF_CORE_READ(sock, type);
	if (type == SOCK_STREAM_)
		p->transport = SOCK_STREAM_;
	else if (type == SOCK_DGRAM_)
		p->transport = SOCK_DGRAM_;
	else
		return 0;
	p->sk = (__u64)sk;
	p->family = family;
	p->port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET_) {
		__u32 a = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(p->addr, &a, 4);
	} else {
		BPF_CORE_READ_INTO(&p->addr, sk, __sk_common.skc_v6_daddr);
	}
	return 1;
}

/* Reads a user sockaddr (sendto/recvfrom/msg_name) into p; 1 if inet. */
static __always_inline int user_sockaddr(void *ua, struct dns_peer *p)
{
	__u16 family = 0;
	if (!ua || bpf_probe_read_user(&family, sizeof(family), ua))
		return 0;
	if (family == AF_INET_) {
		struct sockaddr_in sa = {};
		bpf_probe_read_user(&sa, sizeof(sa), ua);
		p->port = bpf_ntohs(sa.sin_port);
		__builtin_memset(p->addr, 0, 16);
		__builtin_memcpy(p->addr, &sa.sin_addr, 4);
		p->family = AF_INET_;
		return 1;
	}
	if (family == AF_INET6_) {
		struct sockaddr_in6 sa = {};
		bpf_probe_read_user(&sa, sizeof(sa), ua);
		p->port = bpf_ntohs(sa.sin6_port);
		__builtin_memcpy(p->addr, &sa.sin6_addr, 16);
		p->family = AF_INET6_;
		return 1;
	}
	return 0;
}

/* Emits one DNS message of len bytes at user address buf. */
static __always_inline void emit_dns(struct dns_peer *p, __u8 dir, void *buf, __u64 len)
{
	__u32 zero = 0;
	struct intent_buf *ib = bpf_map_lookup_elem(&intent_scratch, &zero);
	if (!ib || !buf)
		return;
	struct dns_event *e = (struct dns_event *)ib->raw;
	fill_hdr(&e->hdr, EV_DNS, bpf_get_current_task_btf());
	e->conn = p->sk;
	e->total = len > 0xffffffff ? 0xffffffff : (__u32)len;
	e->family = p->family;
	e->port = p->port;
	e->dir = dir;
	e->transport = p->transport;
	__builtin_memcpy(e->addr, p->addr, 16);
	e->_pad = 0;
	__u64 n = len;
	if (n > DNS_MAX)
		n = DNS_MAX;
	barrier_var(n);
	n &= DNS_MASK;
	if (n > DNS_MAX)
		return;
	if (n && bpf_probe_read_user(ib->raw + sizeof(*e), n, buf))
		return;
	e->len = n;
	count(&intent_stats, dir == DNS_DIR_SENT ? IST_DNS_SENT : IST_DNS_RECV);
	emit(e, sizeof(*e) + n, EV_DNS);
}

/* The first iovec of a msghdr: base and length. */
static __always_inline void *msg_iov0(struct user_msghdr *m, __u64 *len)
{
	struct iovec iov = {};
	if (!m->msg_iov || m->msg_iovlen < 1 || bpf_probe_read_user(&iov, sizeof(iov), m->msg_iov))
		return NULL;
	*len = iov.iov_len;
	return iov.iov_base;
}

/*
 * A send: the payload is in user memory at entry. dest is the sendto /
 * msg_name address (NULL for a connected socket).
 */
static __always_inline int dns_send(int fd, void *buf, __u64 len, void *dest)
{
	if (!current_tracked())
		return 0;
	struct dns_peer p = {};
	if (!inet_socket(fd, &p))
		return 0;
	if (dest)
		user_sockaddr(dest, &p);
	if (!dns_port(p.port))
		return 0;
	emit_dns(&p, DNS_DIR_SENT, buf, len);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int dns_enter_sendto(struct trace_event_raw_sys_enter *ctx)
{
	return dns_send((int)ctx->args[0], (void *)ctx->args[1], ctx->args[2], (void *)ctx->args[4]);
}

SEC("tracepoint/syscalls/sys_enter_write")
int dns_enter_write(struct trace_event_raw_sys_enter *ctx)
{
	return dns_send((int)ctx->args[0], (void *)ctx->args[1], ctx->args[2], NULL);
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int dns_enter_sendmsg(struct trace_event_raw_sys_enter *ctx)
{
	if (!current_tracked())
		return 0;
	struct dns_peer p = {};
	if (!inet_socket((int)ctx->args[0], &p))
		return 0;
	struct user_msghdr m = {};
	if (bpf_probe_read_user(&m, sizeof(m), (void *)ctx->args[1]))
		return 0;
	if (m.msg_name)
		user_sockaddr(m.msg_name, &p);
	if (!dns_port(p.port))
		return 0;
	__u64 len = 0;
	void *base = msg_iov0(&m, &len);
	emit_dns(&p, DNS_DIR_SENT, base, len);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendmmsg")
int dns_enter_sendmmsg(struct trace_event_raw_sys_enter *ctx)
{
	if (!current_tracked())
		return 0;
	struct dns_peer sock = {};
	if (!inet_socket((int)ctx->args[0], &sock))
		return 0;
	struct mmsghdr *vec = (struct mmsghdr *)ctx->args[1];
	__u32 vlen = ctx->args[2];
	for (int i = 0; i < MAX_MMSG; i++) {
		if (i >= vlen)
			break;
		struct user_msghdr m = {};
		if (bpf_probe_read_user(&m, sizeof(m), &vec[i].msg_hdr))
			break;
		struct dns_peer p = sock;
		if (m.msg_name)
			user_sockaddr(m.msg_name, &p);
		if (!dns_port(p.port))
			continue;
		__u64 len = 0;
		void *base = msg_iov0(&m, &len);
		emit_dns(&p, DNS_DIR_SENT, base, len);
	}
	return 0;
}

/*
 * A receive is stashed at entry if the socket is connected to a DNS port,
 * or is an unconnected datagram socket whose source address the caller asks
 * for (checked at exit): everything else is dropped here.
 */
static __always_inline int dns_recv_enter(int fd, __u64 arg, __u32 size, __u64 uaddr, __u8 call)
{
	if (!current_tracked())
		return 0;
	struct dns_recv r = {};
	if (!inet_socket(fd, &r.peer))
		return 0;
	if (!dns_port(r.peer.port)) {
		if (r.peer.port != 0 || r.peer.transport != SOCK_DGRAM_)
			return 0;
		if (call == DC_PLAIN && !uaddr)
			return 0; /* the source stays unknown */
	}
	r.arg = arg;
	r.uaddr = uaddr;
	r.size = size;
	r.call = call;
	__u64 id = bpf_get_current_pid_tgid();
	if (bpf_map_update_elem(&dns_recvs, &id, &r, BPF_ANY))
		count(&intent_stats, IST_DNS_ARGS_FULL);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int dns_enter_recvfrom(struct trace_event_raw_sys_enter *ctx)
{
	return dns_recv_enter((int)ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[4], DC_PLAIN);
}

SEC("tracepoint/syscalls/sys_enter_read")
int dns_enter_read(struct trace_event_raw_sys_enter *ctx)
{
	return dns_recv_enter((int)ctx->args[0], ctx->args[1], ctx->args[2], 0, DC_PLAIN);
}

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int dns_enter_recvmsg(struct trace_event_raw_sys_enter *ctx)
{
	return dns_recv_enter((int)ctx->args[0], ctx->args[1], 0, 0, DC_MSG);
}

SEC("tracepoint/syscalls/sys_enter_recvmmsg")
int dns_enter_recvmmsg(struct trace_event_raw_sys_enter *ctx)
{
	return dns_recv_enter((int)ctx->args[0], ctx->args[1], ctx->args[2], 0, DC_MMSG);
}

/* One received message: its source decides (unconnected sockets). */
static __always_inline void dns_recv_one(struct dns_recv *r, void *buf, __u64 len, void *src)
{
	struct dns_peer p = r->peer;
	if (src)
		user_sockaddr(src, &p);
	if (!dns_port(p.port))
		return;
	emit_dns(&p, DNS_DIR_RECV, buf, len);
}

/* Takes the receive this thread's entry stashed: 1 if there was one. */
static __always_inline int dns_take(struct dns_recv *r)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct dns_recv *rp = bpf_map_lookup_elem(&dns_recvs, &id);
	if (!rp)
		return 0;
	*r = *rp;
	bpf_map_delete_elem(&dns_recvs, &id);
	return 1;
}

static __always_inline int dns_recv_plain(struct trace_event_raw_sys_exit *ctx)
{
	struct dns_recv r;
	if (!dns_take(&r))
		return 0;
	if (ctx->ret > 0)
		dns_recv_one(&r, (void *)r.arg, ctx->ret, r.peer.port ? NULL : (void *)r.uaddr);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_recvfrom")
int dns_exit_recvfrom(struct trace_event_raw_sys_exit *ctx) { return dns_recv_plain(ctx); }

SEC("tracepoint/syscalls/sys_exit_read")
int dns_exit_read(struct trace_event_raw_sys_exit *ctx) { return dns_recv_plain(ctx); }

SEC("tracepoint/syscalls/sys_exit_recvmsg")
int dns_exit_recvmsg(struct trace_event_raw_sys_exit *ctx)
{
	struct dns_recv r;
	if (!dns_take(&r))
		return 0;
	if (ctx->ret <= 0)
		return 0;
	struct user_msghdr m = {};
	if (bpf_probe_read_user(&m, sizeof(m), (void *)r.arg))
		return 0;
	__u64 len = 0;
	void *base = msg_iov0(&m, &len);
	if ((__u64)ctx->ret < len)
		len = ctx->ret;
	dns_recv_one(&r, base, len, r.peer.port ? NULL : m.msg_name);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_recvmmsg")
int dns_exit_recvmmsg(struct trace_event_raw_sys_exit *ctx)
{
	struct dns_recv r;
	if (!dns_take(&r))
		return 0;
	long n = ctx->ret; /* messages received */
	struct mmsghdr *vec = (struct mmsghdr *)r.arg;
	for (int i = 0; i < MAX_MMSG; i++) {
		if (i >= n)
			break;
		struct mmsghdr mm = {};
		if (bpf_probe_read_user(&mm, sizeof(mm), &vec[i]))
			break;
		__u64 len = 0;
		void *base = msg_iov0(&mm.msg_hdr, &len);
		if (mm.msg_len < len)
			len = mm.msg_len;
		dns_recv_one(&r, base, len, r.peer.port ? NULL : mm.msg_hdr.msg_name);
	}
	return 0;
}

/* ------------------------------------------------------------------ TLS */

struct tls_args {
	__u64 ssl;
	__u64 buf;
	__u64 lenp; /* size_t * of the _ex variants; 0 for the int-returning ones */
	__u8 dir;
	__u8 _pad[7];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct tls_args);
} tls_inflight SEC(".maps");

static __always_inline int tls_enter(struct pt_regs *ctx, __u8 dir, int ex)
{
	__u32 target = bpf_get_attach_cookie(ctx) & (MAX_TLS_TARGETS - 1);
	count(&tls_fires, target);
	if (!current_tracked())
		return 0;
	struct tls_args a = {
		.ssl = PT_REGS_PARM1(ctx),
		.buf = PT_REGS_PARM2(ctx),
		.lenp = ex ? PT_REGS_PARM4(ctx) : 0,
		.dir = dir,
	};
	__u64 id = bpf_get_current_pid_tgid();
	if (bpf_map_update_elem(&tls_inflight, &id, &a, BPF_ANY))
		count(&intent_stats, IST_TLS_ARGS_FULL);
	return 0;
}

struct chunk_ctx {
	struct tls_args a;
	__u64 total;    /* bytes the call moved */
	__u64 captured; /* bytes copied: min(total, cap) */
	__u8 truncated;
};

static long tls_chunk(__u32 i, struct chunk_ctx *c)
{
	__u64 off = (__u64)i * TLS_CHUNK;
	if (off >= c->captured)
		return 1;
	__u32 zero = 0;
	struct intent_buf *ib = bpf_map_lookup_elem(&intent_scratch, &zero);
	if (!ib)
		return 1;
	struct tls_event *e = (struct tls_event *)ib->raw;
	fill_hdr(&e->hdr, EV_TLS, bpf_get_current_task_btf());
	e->conn = c->a.ssl;
	e->total = c->total;
	e->offset = off;
	e->dir = c->a.dir;
	e->truncated = c->truncated;
	e->_pad = 0;
	__u64 n = c->captured - off;
	if (n > TLS_CHUNK)
		n = TLS_CHUNK;
	barrier_var(n);
	if (n > TLS_CHUNK || n == 0)
		return 1;
	if (bpf_probe_read_user(ib->raw + sizeof(*e), n, (void *)(c->a.buf + off)))
		return 1;
	e->len = n;
	emit(e, sizeof(*e) + n, EV_TLS);
	return 0;
}

static __always_inline int tls_exit(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_args *ap = bpf_map_lookup_elem(&tls_inflight, &id);
	if (!ap)
		return 0;
	struct chunk_ctx c = {.a = *ap};
	bpf_map_delete_elem(&tls_inflight, &id);
	long ret = PT_REGS_RC(ctx);
	if (c.a.lenp) {
		/* SSL_read_ex/SSL_write_ex: 1 on success, length through the pointer */
		if (ret != 1)
			return 0;
		__u64 n = 0;
		if (bpf_probe_read_user(&n, sizeof(n), (void *)c.a.lenp))
			return 0;
		c.total = n;
	} else {
		if ((int)ret <= 0)
			return 0;
		c.total = (int)ret;
	}
	if (c.total > 0xffffffff)
		c.total = 0xffffffff;
	__u64 cap = cfg_tls_max;
	if (cap > TLS_MAX_CAP)
		cap = TLS_MAX_CAP;
	c.captured = c.total;
	if (c.captured > cap) {
		c.captured = cap;
		c.truncated = 1;
		count(&intent_stats, IST_TLS_TRUNC);
	}
	count(&intent_stats, IST_TLS_CALLS);
	bpf_loop(TLS_MAX_CAP / TLS_CHUNK, tls_chunk, &c, 0);
	return 0;
}

SEC("uprobe")
int ssl_write_enter(struct pt_regs *ctx) { return tls_enter(ctx, TLS_DIR_WRITE, 0); }

SEC("uprobe")
int ssl_read_enter(struct pt_regs *ctx) { return tls_enter(ctx, TLS_DIR_READ, 0); }

SEC("uprobe")
int ssl_write_ex_enter(struct pt_regs *ctx) { return tls_enter(ctx, TLS_DIR_WRITE, 1); }

SEC("uprobe")
int ssl_read_ex_enter(struct pt_regs *ctx) { return tls_enter(ctx, TLS_DIR_READ, 1); }

SEC("uretprobe")
int ssl_exit(struct pt_regs *ctx) { return tls_exit(ctx); }
