/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The network lock (--network-lock): while a tree with TCP connections is
 * dumped, and until its restore lets it run, the packets of those
 * connections are dropped (not answered with RST), so that their peers
 * only retransmit. The rules live in a table or chain of their own, named
 * after the tree's root PID, so that the restore finds them.
 */
#ifndef STASIS_NETLOCK_H
#define STASIS_NETLOCK_H

#include <stdint.h>
#include <sys/types.h>

enum netlock_method {
	NETLOCK_IPTABLES, /* iptables-restore, ip6tables-restore (criu's default) */
	NETLOCK_NFTABLES, /* nft */
	NETLOCK_SKIP,	  /* no lock */
};

/* The method of a --network-lock argument; -1 when unknown. */
int netlock_parse(const char *name);
const char *netlock_name(enum netlock_method m);

/* One connection, as its own socket sees it; ports in host order. */
struct netlock_conn {
	int family; /* AF_INET or AF_INET6 (v4-mapped addresses lock as IPv4) */
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
};

/* Drops the packets of conns both ways. 0, or -1 (logged, nothing locked). */
int netlock_lock(enum netlock_method m, pid_t root, const struct netlock_conn *conns, size_t nr);
/* Removes the lock of root's tree, if there is one. 0, or -1 (logged). */
int netlock_unlock(enum netlock_method m, pid_t root);
/* The later locks and unlocks act in network namespace nsfd (kept open by
 * the caller; -1: ours), as criu locks a namespace it dumps from inside. */
void netlock_set_netns(int nsfd);

#endif
