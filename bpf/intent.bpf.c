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
 * Only session processes produce events: the DNS programs run per packet
 * and stop at a socket without session storage; the TLS uprobes are
 * attached per session process.
 */
#include "common.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET_   2
#define AF_INET6_  10
#define SOCK_STREAM_ 1
#define SOCK_DGRAM_  2

/*
 * DNS payload copied per packet. 1232 bytes is the EDNS buffer size the
 * DNS flag day settled on: a UDP answer larger than that is truncated by
 * resolvers anyway (TC bit, retry over TCP).
 */
#define DNS_MAX      1232
#define DNS_MASK     2047
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

/*
 * DNS is read off the packets of session sockets (cgroup_skb at the
 * cgroup v2 root), not off syscalls: a program on read/write/recv* would
 * put every process on the host on the syscall slow path, and packets see
 * every way a query leaves (sendmmsg, io_uring, a resolver library's own
 * I/O) without decoding a single msghdr. Attribution is the socket's
 * owner (sess_socks, set at connect/sendto where the process is current):
 * at egress the packet's socket is the sender's, at ingress the receiver's.
 * Packets start at the network header in both directions.
 */

#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17

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

struct pkt {
	__u32 off;      /* of the L4 payload */
	__u16 family;
	__u16 port;     /* the resolver's (remote) port, host order */
	__u8 transport;
	__u8 _pad[3];
	__u8 addr[16];  /* the resolver's address */
};

/* Parses IP and UDP/TCP headers; 1 when the remote end is a DNS port. */
static __always_inline int dns_parse(struct __sk_buff *skb, __u8 dir, struct pkt *p)
{
	__u8 vb = 0;
	if (bpf_skb_load_bytes(skb, 0, &vb, 1))
		return 0;
	__u8 proto;
	if (vb >> 4 == 4) {
		struct iphdr ip;
		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return 0;
		if (ip.frag_off & bpf_htons(0x1fff))
			return 0; /* a later fragment: no L4 header */
		proto = ip.protocol;
		p->off = (__u32)ip.ihl * 4;
		p->family = AF_INET_;
		__u32 a = dir == DNS_DIR_SENT ? ip.daddr : ip.saddr;
		__builtin_memcpy(p->addr, &a, 4);
	} else if (vb >> 4 == 6) {
		struct ipv6hdr ip6;
		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			return 0;
		proto = ip6.nexthdr; /* extension headers: not DNS in practice */
		p->off = sizeof(ip6);
		p->family = AF_INET6_;
		if (dir == DNS_DIR_SENT)
			__builtin_memcpy(p->addr, &ip6.daddr, 16);
		else
			__builtin_memcpy(p->addr, &ip6.saddr, 16);
	} else {
		return 0;
	}
	__u16 ports[2]; /* source, destination */
	if (bpf_skb_load_bytes(skb, p->off, ports, sizeof(ports)))
		return 0;
	p->port = bpf_ntohs(dir == DNS_DIR_SENT ? ports[1] : ports[0]);
	if (!dns_port(p->port))
		return 0;
	if (proto == IPPROTO_UDP_) {
		p->transport = SOCK_DGRAM_;
		p->off += 8;
	} else if (proto == IPPROTO_TCP_) {
		__u8 doff = 0;
		if (bpf_skb_load_bytes(skb, p->off + 12, &doff, 1))
			return 0;
		p->transport = SOCK_STREAM_;
		p->off += (__u32)(doff >> 4) * 4;
	} else {
		return 0;
	}
	return 1;
}

static __always_inline void dns_packet(struct __sk_buff *skb, __u8 dir)
{
	struct bpf_sock *sk = skb->sk;
	if (!sk)
		return;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return;
	struct sock_owner *o = bpf_sk_storage_get(&sess_socks, sk, 0, 0);
	if (!o || !o->tgid)
		return;
	struct pkt p = {};
	if (!dns_parse(skb, dir, &p))
		return;
	if (skb->len <= p.off)
		return; /* SYN, ACK, FIN: no payload */
	__u32 total = skb->len - p.off;
	__u32 zero = 0;
	struct intent_buf *ib = bpf_map_lookup_elem(&intent_scratch, &zero);
	if (!ib)
		return;
	struct dns_event *e = (struct dns_event *)ib->raw;
	e->hdr.kind = EV_DNS;
	e->hdr.version = EVENT_VERSION;
	e->hdr.flags = 0;
	e->hdr.pid = o->tgid;
	e->hdr.tid = o->tid;
	e->hdr._pad = 0;
	e->hdr.ts = bpf_ktime_get_boot_ns();
	e->hdr.start = o->start;
	e->conn = bpf_get_socket_cookie(skb);
	e->total = total;
	e->family = p.family;
	e->port = p.port;
	e->dir = dir;
	e->transport = p.transport;
	__builtin_memcpy(e->addr, p.addr, 16);
	e->_pad = 0;
	__u32 n = total;
	if (n > DNS_MAX)
		n = DNS_MAX;
	/* n is 1..DNS_MAX; this form tells the 6.1 verifier it is never 0 */
	barrier_var(n);
	n = ((n - 1) & DNS_MASK) + 1;
	if (bpf_skb_load_bytes(skb, p.off, ib->raw + sizeof(*e), n))
		return;
	e->len = n;
	count(&intent_stats, dir == DNS_DIR_SENT ? IST_DNS_SENT : IST_DNS_RECV);
	emit(e, sizeof(*e) + n, EV_DNS);
}

SEC("cgroup_skb/egress")
int dns_egress(struct __sk_buff *skb)
{
	dns_packet(skb, DNS_DIR_SENT);
	return 1;
}

SEC("cgroup_skb/ingress")
int dns_ingress(struct __sk_buff *skb)
{
	dns_packet(skb, DNS_DIR_RECV);
	return 1;
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
