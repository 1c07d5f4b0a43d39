/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sock_diag over netlink (NETLINK_SOCK_DIAG, through libnl): the kernel's
 * view of sockets that no descriptor shows, such as the peer of a unix
 * socket, its bound name and the connections a listener has not accepted.
 */
#ifndef STASIS_SOCKDIAG_H
#define STASIS_SOCKDIAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/netlink.h>

/*
 * Sends one SOCK_DIAG_BY_FAMILY dump request (req: a struct *_diag_req of
 * len bytes) and calls cb for every reply until the dump ends. cb returns
 * 0 to go on, anything else to stop with an error. 0 or -1 (logged).
 */
int sockdiag_dump(const void *req, size_t len, int (*cb)(struct nlmsghdr *nlh, void *arg),
		  void *arg);
/*
 * Every later request goes to network namespace nsfd too (duplicated;
 * ours or one already added: nothing): dumps list the sockets of all, a
 * request for one socket asks each. 0 or -1 (logged).
 */
int sockdiag_add_netns(int nsfd);

/* One unix socket as sock_diag describes it. */
struct unix_diag_sk {
	uint32_t ino;
	uint8_t type;	  /* SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET */
	uint8_t state;	  /* TCP_ESTABLISHED, TCP_CLOSE or TCP_LISTEN */
	uint8_t shutdown; /* RCV_SHUTDOWN 1 | SEND_SHUTDOWN 2 */
	bool has_peer;	  /* connected; peer 0: the peer is closed or not accepted yet */
	uint32_t peer;
	uint32_t rqueue; /* listener: connections queued; else bytes queued (dgram: first) */
	uint32_t wqueue; /* listener: backlog; else bytes sent and not yet read by the peer */
	bool has_vfs;	 /* bound to a path: the socket file's inode */
	uint32_t vfs_ino;
	uint64_t vfs_dev; /* as stat() gives st_dev */
	size_t namelen;	  /* 0: not bound; name[0] == 0: abstract name */
	char name[108];
	uint32_t *icons; /* listener: clients of the connections not accepted yet, in order */
	size_t nr_icons;
};

struct unix_diag_table {
	struct unix_diag_sk *sks; /* sorted by inode */
	size_t nr;
};

/* Every unix socket of the caller's network namespace. 0 or -1 (logged). */
int sockdiag_unix_load(struct unix_diag_table *t);
const struct unix_diag_sk *sockdiag_unix_find(const struct unix_diag_table *t, uint32_t ino);
/* The listener whose queue holds a connection from ino, if any. */
const struct unix_diag_sk *sockdiag_unix_listener_of(const struct unix_diag_table *t, uint32_t ino);
void sockdiag_unix_free(struct unix_diag_table *t);

/* One inet socket (TCP, UDP, UDP-lite, raw) as sock_diag describes it. */
struct inet_diag_sk {
	uint32_t ino;	  /* 0: not held by any descriptor (an accept queue's) */
	uint8_t family;	  /* AF_INET, AF_INET6 */
	uint8_t protocol; /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE, IPPROTO_RAW */
	uint8_t state;	  /* TCP_* */
	uint8_t shutdown; /* RCV_SHUTDOWN 1 | SEND_SHUTDOWN 2 */
	uint32_t rqueue;  /* listener: connections not accepted yet; else bytes queued */
	uint32_t wqueue;  /* listener: the backlog; else bytes in the send queue */
	uint16_t sport, dport; /* host order */
	uint8_t src[16], dst[16];
};

struct inet_diag_table {
	struct inet_diag_sk *sks; /* sorted by inode */
	size_t nr;
};

/* Every inet socket of the caller's network namespace. 0 or -1 (logged). */
int sockdiag_inet_load(struct inet_diag_table *t);
const struct inet_diag_sk *sockdiag_inet_find(const struct inet_diag_table *t, uint32_t ino);
struct inet_diag_req_v2;
/* The one socket req names exactly (its addresses, ports and cookie): 0
 * or -1 (logged). */
int sockdiag_inet_query(const struct inet_diag_req_v2 *req, struct inet_diag_sk *out);
void sockdiag_inet_free(struct inet_diag_table *t);

#endif
