// SPDX-License-Identifier: GPL-2.0-only
/*
 * carwall's sock_ops program: marks each TCP socket that a listener accepted, when the kernel
 * reports it passively established (BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB), in the socket's
 * storage (CW_SK_F_PASSIVE).
 *
 * The egress program (skb.bpf.c) and revocation judge an accepted connection by its peer's
 * address alone, since the peer's port is an ephemeral one no rule is about. Which sockets are
 * accepted is therefore the kernel's word, never a guess from ports an app can choose (a socket
 * bound with SO_REUSEPORT to the port of its own listener is still one it connected). A socket
 * the app connected itself carries CW_SK_F_ACTIVE from the connect hook and is never taken for
 * accepted, not even after a TCP simultaneous open, which the kernel reports as passive.
 *
 * Every accepted socket below the agent's cgroup root is marked (the callback runs in softirq
 * context, where the app of the current task means nothing); unmanaged ones are never judged.
 * Returns 1: sock_ops programs do not refuse anything here.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "cw_app.bpf.h"

SEC("sockops")
int cw_sock_ops(struct bpf_sock_ops *ops)
{
	struct cw_sk_state *st;
	struct bpf_sock *sk;

	if (ops->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		return 1;
	sk = ops->sk;
	if (!sk)
		return 1;
	st = bpf_sk_storage_get(&cw_sk_state, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	/*
	 * No storage: the socket stays unmarked and is judged like a connected one, by destination
	 * port too, which refuses it unless a rule allows the peer's port (fail closed).
	 */
	if (st && !(st->flags & CW_SK_F_ACTIVE))
		st->flags |= CW_SK_F_PASSIVE;
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
