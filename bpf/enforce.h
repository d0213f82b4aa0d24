/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Enforcement rules for session processes, shared by the LSM object (which
 * can deny) and the tracepoint object (which can only kill, with
 * `action: kill`). The maps are filled from the receiver's `enforce:` config;
 * the LSM object gets the tracepoint object's maps through MapReplacements.
 */
#ifndef AGENTWATCH_ENFORCE_H
#define AGENTWATCH_ENFORCE_H

#include "common.h"

#define DENY_KEY_LEN 256
#define SIGKILL_ 9
#define EPERM_ 1

/* cfg_enforce */
#define ENF_OFF     0
#define ENF_MONITOR 1 /* report what would be denied, deny nothing */
#define ENF_ENFORCE 2

const volatile __u8 cfg_enforce = ENF_OFF;
const volatile __u8 cfg_enforce_kill = 0;     /* action: kill */
const volatile __u8 cfg_connect_allowlist = 0; /* allow_connect is set: outside it is denied */

/*
 * Denied paths. An exact path is stored NUL-terminated, a directory prefix
 * with its trailing '/', so one longest-prefix lookup of "path\0" answers
 * both. The value is the rule id (index into the receiver's rule table).
 */
struct deny_key {
	__u32 prefixlen; /* bits */
	char data[DENY_KEY_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct deny_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} deny_paths SEC(".maps");

/* allow_connect: IPv4 as v4-mapped IPv6, so one trie holds both. */
struct net_key {
	__u32 prefixlen;
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct net_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} allow_net SEC(".maps");

/* deny_ports: destination port (host order) -> rule id. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u16);
	__type(value, __u32);
} deny_ports SEC(".maps");

/* Rule id of "outside allow_connect"; the receiver uses the same number. */
#define RULE_ALLOW_CONNECT 0xffffffff

/* The deny_paths key is built here, not on the stack: 260 bytes would not
 * fit beside an open program's own frame and its path walk's. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct deny_key);
} deny_scratch SEC(".maps");

/*
 * Rule id for path_scratch[start, end), or -1. Writes the NUL at end, so
 * callers must be done with the bytes past the path.
 */
static __always_inline long deny_open_rule(struct path_buf *pb, __u32 start, __u32 end)
{
	__u32 zero = 0;
	struct deny_key *k = bpf_map_lookup_elem(&deny_scratch, &zero);
	if (!k || end < start || end > PATH_END)
		return -1;
	__u32 len = end - start;
	if (len >= DENY_KEY_LEN)
		return -1; /* longer than any rule; the receiver rejects longer rules */
	pb->buf[end & PATH_MASK] = 0;
	/* bytes past the NUL are ignored: the lookup compares prefixlen bits */
	bpf_probe_read_kernel(k->data, DENY_KEY_LEN, &pb->buf[start & PATH_MASK]);
	k->prefixlen = (len + 1) * 8;
	__u32 *rule = bpf_map_lookup_elem(&deny_paths, k);
	return rule ? (long)*rule : -1;
}

/* Rule id for a connect to addr (16 bytes, v4-mapped for AF_INET):port, or -1. */
static __always_inline long connect_rule(__u16 family, __u8 *addr, __u16 port)
{
	__u32 *r = bpf_map_lookup_elem(&deny_ports, &port);
	if (r)
		return *r;
	if (!cfg_connect_allowlist)
		return -1;
	struct net_key k = {.prefixlen = 128};
	if (family == 2) {
		k.addr[10] = 0xff;
		k.addr[11] = 0xff;
		__builtin_memcpy(&k.addr[12], addr, 4);
	} else {
		__builtin_memcpy(k.addr, addr, 16);
	}
	if (bpf_map_lookup_elem(&allow_net, &k))
		return -1;
	return RULE_ALLOW_CONNECT;
}

/*
 * What a matched rule does, and the action reported for it. An LSM hook
 * (can_deny) returns -EPERM in enforce mode; tracepoints cannot deny, so
 * there enforcement is `action: kill` alone. Returns the hook's verdict.
 */
static __always_inline int enforce_action(int can_deny, __u8 *act)
{
	*act = ENF_ACT_AUDIT;
	if (cfg_enforce != ENF_ENFORCE)
		return 0;
	if (can_deny)
		*act = ENF_ACT_DENY;
	if (cfg_enforce_kill) {
		bpf_send_signal(SIGKILL_);
		*act = ENF_ACT_KILL;
	}
	return can_deny ? -EPERM_ : 0;
}

/* Emits an EV_ENFORCE record; path_len bytes of data follow the fixed part.
 * flags are the header's (F_SOCK_CGROUP: judged by a cgroup program). */
static __always_inline void emit_enforce(struct task_struct *t, __u32 rule, __u8 what, __u8 action,
					 __u16 family, __u16 port, __u8 *addr,
					 struct path_buf *pb, __u32 start, __u32 end, __u16 flags)
{
	__u32 zero = 0;
	struct ev_buf *ev = bpf_map_lookup_elem(&ev_scratch, &zero);
	if (!ev)
		return;
	struct enforce_event *e = (struct enforce_event *)ev->raw;
	char *data = ev->raw + sizeof(*e);
	fill_hdr(&e->hdr, EV_ENFORCE, t);
	e->hdr.flags = flags;
	e->rule = rule;
	e->what = what;
	e->action = action;
	e->family = family;
	e->port = port;
	if (addr)
		__builtin_memcpy(e->addr, addr, 16);
	else
		__builtin_memset(e->addr, 0, 16);
	e->_pad = 0;
	__u32 len = pb ? copy_path(data, pb, start, end) : 0;
	e->path_len = len;
	emit(e, sizeof(*e) + len, EV_ENFORCE);
}

#endif
