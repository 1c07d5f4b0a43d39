// SPDX-License-Identifier: GPL-2.0
/*
 * Netlink sockets. netlink_diag (one dump of the namespace's netlink
 * sockets, through libnl) gives the bound port id, the connected
 * destination and how much is queued; a copy of the descriptor gives the
 * type, the protocol, every multicast group (NETLINK_LIST_MEMBERSHIPS, so
 * groups above 32 too) and the NETLINK_* options. netlink_diag does not
 * list a socket that is neither bound nor in a group: such a socket has
 * nothing but its type, protocol and options.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/sockios.h>
#include <linux/netlink_diag.h>
#include <linux/sock_diag.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include "collect.h"
#include "files.h"
#include "stasis/log.h"
#include "stasis/sockdiag.h"
#include "stasis/util.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
/* sk_state of a connect()ed netlink socket */
#define NETLINK_CONNECTED 1

struct nl_diag_sk {
	uint32_t ino;
	uint8_t state;
	uint32_t portid, dst_portid, dst_group;
	uint32_t flags;
	uint32_t rmem_alloc;
	uint32_t *groups;  /* bitmap, from NETLINK_DIAG_GROUPS */
	size_t groups_len; /* bytes */
};

static struct nl_diag_sk *diag;
static size_t nr_diag;
static int diag_state; /* 0 not loaded, 1 loaded, -1 failed */

static int diag_cb(struct nlmsghdr *nlh, void *arg)
{
	struct netlink_diag_msg *m = nlmsg_data(nlh);
	struct nlattr *tb[NETLINK_DIAG_MAX + 1];
	struct nl_diag_sk *s;

	(void)arg;
	if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*m)) ||
	    nlmsg_parse(nlh, sizeof(*m), tb, NETLINK_DIAG_MAX, NULL) < 0) {
		pr_err("netlink_diag: malformed netlink socket record");
		return -1;
	}
	if (!(nr_diag & (nr_diag - 1)))
		diag = xrealloc(diag, (nr_diag ? 2 * nr_diag : 1) * sizeof(*diag));
	s = &diag[nr_diag++];
	memset(s, 0, sizeof(*s));
	s->ino = m->ndiag_ino;
	s->state = m->ndiag_state;
	s->portid = m->ndiag_portid;
	s->dst_portid = m->ndiag_dst_portid;
	s->dst_group = m->ndiag_dst_group;
	if (tb[NETLINK_DIAG_FLAGS] && nla_len(tb[NETLINK_DIAG_FLAGS]) >= 4)
		s->flags = nla_get_u32(tb[NETLINK_DIAG_FLAGS]);
	if (tb[NETLINK_DIAG_MEMINFO] && nla_len(tb[NETLINK_DIAG_MEMINFO]) >=
					    (int)(sizeof(uint32_t) * (SK_MEMINFO_RMEM_ALLOC + 1)))
		s->rmem_alloc =
		    ((uint32_t *)nla_data(tb[NETLINK_DIAG_MEMINFO]))[SK_MEMINFO_RMEM_ALLOC];
	if (tb[NETLINK_DIAG_GROUPS] && nla_len(tb[NETLINK_DIAG_GROUPS]) > 0) {
		s->groups_len = nla_len(tb[NETLINK_DIAG_GROUPS]) & ~3u;
		s->groups = xmalloc(s->groups_len + 4);
		memcpy(s->groups, nla_data(tb[NETLINK_DIAG_GROUPS]), s->groups_len);
	}
	return 0;
}

static bool load(void)
{
	struct netlink_diag_req req = {
	    .sdiag_family = AF_NETLINK,
	    .sdiag_protocol = NDIAG_PROTO_ALL,
	    .ndiag_show = NDIAG_SHOW_MEMINFO | NDIAG_SHOW_GROUPS | NDIAG_SHOW_FLAGS,
	};

	if (!diag_state)
		diag_state = sockdiag_dump(&req, sizeof(req), diag_cb, NULL) ? -1 : 1;
	return diag_state > 0;
}

static const struct nl_diag_sk *find(uint32_t ino)
{
	for (size_t i = 0; i < nr_diag; i++)
		if (diag[i].ino == ino)
			return &diag[i];
	return NULL;
}

/* The family of a socket, from a copy of the descriptor; -1 if unknown. */
int fd_src_sock_family(const struct fd_src *src)
{
	int fd, family = -1;
	socklen_t len = sizeof(family);

	if (!S_ISSOCK(src->st.st_mode))
		return -1;
	fd = fd_src_dup(src);
	if (fd < 0)
		return -1;
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len))
		family = -1;
	close(fd);
	return family;
}

static bool match(const struct fd_src *src)
{
	return fd_src_sock_family(src) == AF_NETLINK;
}

static int getint(int fd, int level, int opt, int *val)
{
	socklen_t len = sizeof(*val);

	*val = 0;
	return getsockopt(fd, level, opt, val, &len);
}

/* Group numbers (from 1) set in a bitmap of len bytes. */
static void add_groups(Stasis__NetlinkSk *sk, const uint32_t *map, size_t len)
{
	for (size_t w = 0; w < len / 4; w++)
		for (int b = 0; b < 32; b++) {
			if (!(map[w] & (1u << b)))
				continue;
			sk->groups = xrealloc(sk->groups, (sk->n_groups + 1) * sizeof(uint32_t));
			sk->groups[sk->n_groups++] = w * 32 + b + 1;
		}
}

static int groups(int fd, const struct nl_diag_sk *d, Stasis__NetlinkSk *sk)
{
	socklen_t len = 0;
	uint32_t *map;

	/* the first call says how long the bitmap is */
	if (getsockopt(fd, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, NULL, &len)) {
		if (d)
			add_groups(sk, d->groups, d->groups_len);
		return 0;
	}
	map = xmalloc(len + 4);
	if (len && getsockopt(fd, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, map, &len)) {
		free(map);
		return -1;
	}
	add_groups(sk, map, len);
	free(map);
	return 0;
}

static void options(int fd, Stasis__NetlinkSk *sk)
{
	static const struct {
		int opt;
		size_t has, val; /* offsets in Stasis__NetlinkSk */
	} flags[] = {
#define NL_OPT(o, f) {o, offsetof(Stasis__NetlinkSk, has_##f), offsetof(Stasis__NetlinkSk, f)}
	    NL_OPT(NETLINK_PKTINFO, pktinfo),
	    NL_OPT(NETLINK_BROADCAST_ERROR, broadcast_error),
	    NL_OPT(NETLINK_NO_ENOBUFS, no_enobufs),
	    NL_OPT(NETLINK_LISTEN_ALL_NSID, listen_all_nsid),
	    NL_OPT(NETLINK_CAP_ACK, cap_ack),
	    NL_OPT(NETLINK_EXT_ACK, ext_ack),
	    NL_OPT(NETLINK_GET_STRICT_CHK, get_strict_chk),
#undef NL_OPT
	};
	int v;

	for (size_t i = 0; i < ARRAY_SIZE(flags); i++)
		if (!getint(fd, SOL_NETLINK, flags[i].opt, &v) && v) {
			*(protobuf_c_boolean *)((char *)sk + flags[i].has) = true;
			*(protobuf_c_boolean *)((char *)sk + flags[i].val) = true;
		}
	if (!getint(fd, SOL_SOCKET, SO_SNDBUF, &v)) {
		sk->has_sndbuf = true;
		sk->sndbuf = v;
	}
	if (!getint(fd, SOL_SOCKET, SO_RCVBUF, &v)) {
		sk->has_rcvbuf = true;
		sk->rcvbuf = v;
	}
	sk->common = sk_common_collect(fd);
}

static int dump(const struct fd_src *src, Stasis__FileEntry *fe)
{
	Stasis__NetlinkSk *sk = xmalloc(sizeof(*sk));
	const struct nl_diag_sk *d;
	int fd, v, ret = -1;

	stasis__netlink_sk__init(sk);
	fe->type = STASIS__FD_TYPE__NETLINKSK;
	fe->netlinksk = sk;
	sk->ino = src->st.st_ino;
	if (!load())
		return -1;
	d = find(sk->ino);
	fd = fd_src_dup(src);
	if (fd < 0)
		return -1;
	if (getint(fd, SOL_SOCKET, SO_TYPE, &v))
		goto err;
	sk->type = v;
	if (getint(fd, SOL_SOCKET, SO_PROTOCOL, &v))
		goto err;
	sk->protocol = v;
	if (d && (d->flags & NDIAG_FLAG_CB_RUNNING)) {
		pr_err("fd %d of task %d: netlink socket %u (protocol %u) is in the middle of a "
		       "dump from the kernel, which cannot be carried",
		       src->fd, src->pid, sk->ino, sk->protocol);
		goto out;
	}
	if (d && d->rmem_alloc) {
		/* only the first message could be peeked: refuse rather than lose any */
		pr_err("fd %d of task %d: netlink socket %u (protocol %u) has messages queued "
		       "(%u bytes) that the task has not read; stasis cannot carry them",
		       src->fd, src->pid, sk->ino, sk->protocol, d->rmem_alloc);
		goto out;
	}
	if (d && d->portid) {
		sk->has_portid = true;
		sk->portid = d->portid;
	}
	if (d && d->state == NETLINK_CONNECTED) {
		sk->has_dst_portid = sk->has_dst_group = true;
		sk->dst_portid = d->dst_portid;
		sk->dst_group = d->dst_group;
		if (d->dst_group > 32) {
			pr_err(
			    "fd %d of task %d: netlink socket %u is connected to group %u, which "
			    "connect() cannot set again",
			    src->fd, src->pid, sk->ino, d->dst_group);
			goto out;
		}
	}
	if (groups(fd, d, sk))
		goto err;
	if (skfilter_collect(src, fd, "netlink socket", &sk->filter))
		goto out;
	options(fd, sk);
	pr_debug("netlink socket %u of task %d: protocol %u portid %u, %zu groups", sk->ino,
		 src->pid, sk->protocol, sk->portid, sk->n_groups);
	ret = 0;
	goto out;
err:
	pr_perror("fd %d of task %d: cannot read netlink socket %u", src->fd, src->pid, sk->ino);
out:
	close(fd);
	return ret;
}

const struct fd_dump_ops netlinksk_dump_ops = {"netlink socket", match, dump};
