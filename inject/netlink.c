// SPDX-License-Identifier: GPL-2.0
/*
 * Netlink sockets: made again in stasis-inject with their type and
 * protocol, bound to their port id, joined to their groups, connected to
 * their destination, with their options; the task inherits them.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/netlink.h>

#include "files.h"
#include "stasis/log.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

static int set_flag(int fd, int opt, protobuf_c_boolean on)
{
	int v = 1;

	return on ? setsockopt(fd, SOL_NETLINK, opt, &v, sizeof(v)) : 0;
}

static int options(int fd, const Stasis__NetlinkSk *sk)
{
	return set_flag(fd, NETLINK_PKTINFO, sk->pktinfo) ||
	       set_flag(fd, NETLINK_BROADCAST_ERROR, sk->broadcast_error) ||
	       set_flag(fd, NETLINK_NO_ENOBUFS, sk->no_enobufs) ||
	       set_flag(fd, NETLINK_LISTEN_ALL_NSID, sk->listen_all_nsid) ||
	       set_flag(fd, NETLINK_CAP_ACK, sk->cap_ack) ||
	       set_flag(fd, NETLINK_EXT_ACK, sk->ext_ack) ||
	       set_flag(fd, NETLINK_GET_STRICT_CHK, sk->get_strict_chk);
}

static int netlinksk_open(Stasis__FileEntry *fe)
{
	const Stasis__NetlinkSk *sk = fe->netlinksk;
	struct sockaddr_nl addr = {.nl_family = AF_NETLINK};
	int fd;

	if (!sk) {
		pr_err("file %u is a netlink socket without its state", fe->id);
		return -1;
	}
	fd = socket(AF_NETLINK, sk->type, sk->protocol);
	if (fd < 0) {
		pr_perror("netlink socket %u: cannot create a socket of protocol %u", sk->ino,
			  sk->protocol);
		return -1;
	}
	if (sk->portid) {
		addr.nl_pid = sk->portid;
		if (bind(fd, (struct sockaddr *)&addr, sizeof(addr))) {
			pr_perror("netlink socket %u: cannot bind port id %u (protocol %u)",
				  sk->ino, sk->portid, sk->protocol);
			goto err;
		}
	}
	for (size_t i = 0; i < sk->n_groups; i++)
		if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &sk->groups[i],
			       sizeof(sk->groups[i]))) {
			pr_perror("netlink socket %u: cannot join group %u (protocol %u)", sk->ino,
				  sk->groups[i], sk->protocol);
			goto err;
		}
	if (sk->has_dst_portid) {
		if (sk->dst_group > 32) {
			pr_err("netlink socket %u: destination group %u is out of range", sk->ino,
			       sk->dst_group);
			goto err;
		}
		addr.nl_pid = sk->dst_portid;
		addr.nl_groups = sk->dst_group ? 1u << (sk->dst_group - 1) : 0;
		if (connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
			pr_perror("netlink socket %u: cannot connect to port id %u group %u",
				  sk->ino, sk->dst_portid, sk->dst_group);
			goto err;
		}
	}
	if (options(fd, sk)) {
		pr_perror("netlink socket %u: cannot set its NETLINK_* options", sk->ino);
		goto err;
	}
	if (skfilter_restore(fd, sk->filter) || sk_common_restore(fd, sk->common) ||
	    sock_set_bufs(fd, sk->has_sndbuf, sk->sndbuf, sk->has_rcvbuf, sk->rcvbuf)) {
		pr_perror("netlink socket %u: cannot set its socket options", sk->ino);
		goto err;
	}
	if ((fe->flags & O_NONBLOCK) && fcntl(fd, F_SETFL, O_NONBLOCK)) {
		pr_perror("netlink socket %u: cannot set its flags", sk->ino);
		goto err;
	}
	return fd;
err:
	close(fd);
	return -1;
}

const struct fd_restore_ops netlinksk_restore_ops = {STASIS__FD_TYPE__NETLINKSK, netlinksk_open,
						     NULL};
