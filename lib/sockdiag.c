// SPDX-License-Identifier: GPL-2.0
/* sock_diag dumps through libnl, and the unix socket table built from one. */
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/sysmacros.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <linux/inet_diag.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>

#include "stasis/log.h"
#include "stasis/sockdiag.h"
#include "stasis/util.h"

struct dump_ctx {
	int (*cb)(struct nlmsghdr *nlh, void *arg);
	void *arg;
	int err;
};

static int valid_cb(struct nl_msg *msg, void *arg)
{
	struct dump_ctx *ctx = arg;

	if (ctx->cb(nlmsg_hdr(msg), ctx->arg)) {
		ctx->err = -1;
		return NL_STOP;
	}
	return NL_OK;
}

/*
 * The network namespaces whose sockets are asked for besides ours (a tree
 * in its own, see collect/ns.c): sock_diag answers for the namespace its
 * socket was made in, so one is made in each.
 */
static int netns_fds[64];
static size_t nr_netns;
static int own_netns = -1;

int sockdiag_add_netns(int nsfd)
{
	struct stat st, o;

	if (own_netns < 0) {
		own_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
		if (own_netns < 0) {
			pr_perror("sock_diag: cannot open our own network namespace");
			return -1;
		}
	}
	if (fstat(nsfd, &st) || fstat(own_netns, &o)) {
		pr_perror("sock_diag: cannot read a network namespace");
		return -1;
	}
	if (st.st_ino == o.st_ino && st.st_dev == o.st_dev)
		return 0;
	for (size_t i = 0; i < nr_netns; i++) {
		struct stat n;

		if (!fstat(netns_fds[i], &n) && n.st_ino == st.st_ino && n.st_dev == st.st_dev)
			return 0;
	}
	if (nr_netns == ARRAY_SIZE(netns_fds)) {
		pr_err("sock_diag: more than %zu network namespaces", ARRAY_SIZE(netns_fds));
		return -1;
	}
	netns_fds[nr_netns] = fcntl(nsfd, F_DUPFD_CLOEXEC, 0);
	if (netns_fds[nr_netns] < 0) {
		pr_perror("sock_diag: cannot keep a network namespace");
		return -1;
	}
	nr_netns++;
	return 0;
}

/* A NETLINK_SOCK_DIAG socket of namespace nsfd (-1: ours). */
static struct nl_sock *diag_socket(int nsfd)
{
	struct nl_sock *sk = nl_socket_alloc();
	int err;

	if (!sk) {
		pr_err("sock_diag: cannot allocate a netlink socket");
		return NULL;
	}
	if (nsfd >= 0 && setns(nsfd, CLONE_NEWNET)) {
		pr_perror("sock_diag: cannot enter a network namespace of the tree");
		nl_socket_free(sk);
		return NULL;
	}
	err = nl_connect(sk, NETLINK_SOCK_DIAG);
	/* the socket stays in the namespace it was made in */
	if (nsfd >= 0 && setns(own_netns, CLONE_NEWNET)) {
		pr_perror("sock_diag: cannot come back to our own network namespace");
		abort();
	}
	if (err < 0) {
		pr_err("sock_diag: cannot connect a NETLINK_SOCK_DIAG socket: %s",
		       nl_geterror(err));
		nl_socket_free(sk);
		return NULL;
	}
	return sk;
}

/* One request in namespace nsfd; quiet: no message when it fails. */
static int request_in(int nsfd, bool quiet, const void *req, size_t len, int flags,
		      int (*cb)(struct nlmsghdr *nlh, void *arg), void *arg)
{
	struct dump_ctx ctx = {cb, arg, 0};
	struct nl_sock *sk = diag_socket(nsfd);
	int err;

	if (!sk)
		return -1;
	/* a dump ends with NLMSG_DONE; replies can exceed a page */
	nl_socket_disable_auto_ack(sk);
	nl_socket_enable_msg_peek(sk);
	nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, valid_cb, &ctx);
	err = nl_send_simple(sk, SOCK_DIAG_BY_FAMILY, flags, (void *)req, len);
	if (err < 0) {
		pr_err("sock_diag: cannot send the request: %s", nl_geterror(err));
		goto out;
	}
	err = nl_recvmsgs_default(sk);
	if (err < 0 && !ctx.err && !quiet)
		pr_err("sock_diag: %s failed: %s", flags & NLM_F_DUMP ? "dump" : "request",
		       nl_geterror(err));
out:
	nl_socket_free(sk);
	return err < 0 || ctx.err ? -1 : 0;
}

/* A dump: in every namespace, ours first. A request for one socket: in
 * each until one knows it. */
static int request(const void *req, size_t len, int flags,
		   int (*cb)(struct nlmsghdr *nlh, void *arg), void *arg)
{
	bool dump = flags & NLM_F_DUMP;

	for (size_t i = 0; i <= nr_netns; i++) {
		int nsfd = i ? netns_fds[i - 1] : -1;
		int r = request_in(nsfd, !dump && i < nr_netns, req, len, flags, cb, arg);

		if (dump && r)
			return -1;
		if (!dump && !r)
			return 0;
	}
	return dump ? 0 : -1;
}

int sockdiag_dump(const void *req, size_t len, int (*cb)(struct nlmsghdr *nlh, void *arg),
		  void *arg)
{
	return request(req, len, NLM_F_DUMP, cb, arg);
}

static int unix_cb(struct nlmsghdr *nlh, void *arg)
{
	struct unix_diag_table *t = arg;
	struct nlattr *tb[UNIX_DIAG_MAX + 1];
	struct unix_diag_msg *m = nlmsg_data(nlh);
	struct unix_diag_sk *s;

	if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*m)) ||
	    nlmsg_parse(nlh, sizeof(*m), tb, UNIX_DIAG_MAX, NULL) < 0) {
		pr_err("sock_diag: malformed unix socket record");
		return -1;
	}
	if (!(t->nr & (t->nr - 1))) /* 0 or a power of two: double */
		t->sks = xrealloc(t->sks, (t->nr ? 2 * t->nr : 1) * sizeof(*t->sks));
	s = &t->sks[t->nr++];
	memset(s, 0, sizeof(*s));
	s->ino = m->udiag_ino;
	s->type = m->udiag_type;
	s->state = m->udiag_state;
	if (tb[UNIX_DIAG_PEER] && nla_len(tb[UNIX_DIAG_PEER]) >= 4) {
		s->has_peer = true;
		s->peer = nla_get_u32(tb[UNIX_DIAG_PEER]);
	}
	if (tb[UNIX_DIAG_NAME]) {
		s->namelen = nla_len(tb[UNIX_DIAG_NAME]);
		if (s->namelen > sizeof(s->name))
			s->namelen = sizeof(s->name);
		memcpy(s->name, nla_data(tb[UNIX_DIAG_NAME]), s->namelen);
	}
	if (tb[UNIX_DIAG_VFS] && nla_len(tb[UNIX_DIAG_VFS]) >= (int)sizeof(struct unix_diag_vfs)) {
		struct unix_diag_vfs *v = nla_data(tb[UNIX_DIAG_VFS]);

		s->has_vfs = true;
		s->vfs_ino = v->udiag_vfs_ino;
		/* the kernel's own dev_t: 12 bits of major, 20 of minor */
		s->vfs_dev = makedev(v->udiag_vfs_dev >> 20, v->udiag_vfs_dev & 0xfffff);
	}
	if (tb[UNIX_DIAG_RQLEN] &&
	    nla_len(tb[UNIX_DIAG_RQLEN]) >= (int)sizeof(struct unix_diag_rqlen)) {
		struct unix_diag_rqlen *q = nla_data(tb[UNIX_DIAG_RQLEN]);

		s->rqueue = q->udiag_rqueue;
		s->wqueue = q->udiag_wqueue;
	}
	if (tb[UNIX_DIAG_SHUTDOWN] && nla_len(tb[UNIX_DIAG_SHUTDOWN]) >= 1)
		s->shutdown = *(uint8_t *)nla_data(tb[UNIX_DIAG_SHUTDOWN]);
	if (tb[UNIX_DIAG_ICONS]) {
		s->nr_icons = nla_len(tb[UNIX_DIAG_ICONS]) / sizeof(uint32_t);
		s->icons = xmalloc(s->nr_icons * sizeof(uint32_t) + 1);
		memcpy(s->icons, nla_data(tb[UNIX_DIAG_ICONS]), s->nr_icons * sizeof(uint32_t));
	}
	return 0;
}

static int by_ino(const void *a, const void *b)
{
	const struct unix_diag_sk *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

int sockdiag_unix_load(struct unix_diag_table *t)
{
	struct unix_diag_req req = {
	    .sdiag_family = AF_UNIX,
	    .udiag_states = ~0U,
	    .udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER | UDIAG_SHOW_ICONS |
			  UDIAG_SHOW_RQLEN,
	};

	memset(t, 0, sizeof(*t));
	if (sockdiag_dump(&req, sizeof(req), unix_cb, t)) {
		sockdiag_unix_free(t);
		return -1;
	}
	if (t->nr)
		qsort(t->sks, t->nr, sizeof(*t->sks), by_ino);
	return 0;
}

const struct unix_diag_sk *sockdiag_unix_find(const struct unix_diag_table *t, uint32_t ino)
{
	struct unix_diag_sk key = {.ino = ino};

	if (!t->nr)
		return NULL;
	return bsearch(&key, t->sks, t->nr, sizeof(*t->sks), by_ino);
}

const struct unix_diag_sk *sockdiag_unix_listener_of(const struct unix_diag_table *t, uint32_t ino)
{
	for (size_t i = 0; i < t->nr; i++)
		for (size_t j = 0; j < t->sks[i].nr_icons; j++)
			if (t->sks[i].icons[j] == ino)
				return &t->sks[i];
	return NULL;
}

void sockdiag_unix_free(struct unix_diag_table *t)
{
	for (size_t i = 0; i < t->nr; i++)
		free(t->sks[i].icons);
	free(t->sks);
	memset(t, 0, sizeof(*t));
}

/* ---- inet sockets ---- */

struct inet_dump {
	struct inet_diag_table *t;
	uint8_t protocol;
};

static int inet_cb(struct nlmsghdr *nlh, void *arg)
{
	struct inet_dump *d = arg;
	struct inet_diag_table *t = d->t;
	struct nlattr *tb[INET_DIAG_MAX + 1];
	struct inet_diag_msg *m = nlmsg_data(nlh);
	struct inet_diag_sk *s;

	if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*m)) ||
	    nlmsg_parse(nlh, sizeof(*m), tb, INET_DIAG_MAX, NULL) < 0) {
		pr_err("sock_diag: malformed inet socket record");
		return -1;
	}
	if (!(t->nr & (t->nr - 1)))
		t->sks = xrealloc(t->sks, (t->nr ? 2 * t->nr : 1) * sizeof(*t->sks));
	s = &t->sks[t->nr++];
	memset(s, 0, sizeof(*s));
	s->ino = m->idiag_inode;
	s->family = m->idiag_family;
	s->protocol = d->protocol;
	s->state = m->idiag_state;
	s->rqueue = m->idiag_rqueue;
	s->wqueue = m->idiag_wqueue;
	s->sport = ntohs(m->id.idiag_sport);
	s->dport = ntohs(m->id.idiag_dport);
	memcpy(s->src, m->id.idiag_src, 16);
	memcpy(s->dst, m->id.idiag_dst, 16);
	if (tb[INET_DIAG_SHUTDOWN] && nla_len(tb[INET_DIAG_SHUTDOWN]) >= 1)
		s->shutdown = *(uint8_t *)nla_data(tb[INET_DIAG_SHUTDOWN]);
	if (tb[INET_DIAG_PROTOCOL] && nla_len(tb[INET_DIAG_PROTOCOL]) >= 1)
		s->protocol = *(uint8_t *)nla_data(tb[INET_DIAG_PROTOCOL]);
	return 0;
}

static int by_inet_ino(const void *a, const void *b)
{
	const struct inet_diag_sk *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

int sockdiag_inet_load(struct inet_diag_table *t)
{
	static const uint8_t families[] = {AF_INET, AF_INET6};
	static const uint8_t protocols[] = {IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE};

	memset(t, 0, sizeof(*t));
	for (size_t f = 0; f < ARRAY_SIZE(families); f++)
		for (size_t p = 0; p < ARRAY_SIZE(protocols); p++) {
			struct inet_diag_req_v2 req = {
			    .sdiag_family = families[f],
			    .sdiag_protocol = protocols[p],
			    .idiag_states = ~0U,
			};
			struct inet_dump d = {t, protocols[p]};

			if (sockdiag_dump(&req, sizeof(req), inet_cb, &d)) {
				sockdiag_inet_free(t);
				return -1;
			}
		}
	if (t->nr)
		qsort(t->sks, t->nr, sizeof(*t->sks), by_inet_ino);
	return 0;
}

int sockdiag_inet_query(const struct inet_diag_req_v2 *req, struct inet_diag_sk *out)
{
	struct inet_diag_table t = {0};
	struct inet_dump d = {&t, req->sdiag_protocol};
	int ret = request(req, sizeof(*req), 0, inet_cb, &d);

	if (!ret && t.nr != 1) {
		pr_err("sock_diag: %zu answers for one socket", t.nr);
		ret = -1;
	}
	if (!ret)
		*out = t.sks[0];
	sockdiag_inet_free(&t);
	return ret;
}

const struct inet_diag_sk *sockdiag_inet_find(const struct inet_diag_table *t, uint32_t ino)
{
	struct inet_diag_sk key = {.ino = ino};

	if (!t->nr || !ino)
		return NULL;
	return bsearch(&key, t->sks, t->nr, sizeof(*t->sks), by_inet_ino);
}

void sockdiag_inet_free(struct inet_diag_table *t)
{
	free(t->sks);
	memset(t, 0, sizeof(*t));
}
