// SPDX-License-Identifier: GPL-2.0
/*
 * Packet sockets. packet_diag (one dump of the namespace's AF_PACKET
 * sockets, through libnl) gives what no getsockopt returns: the bound
 * interface, PACKET_COPY_THRESH, the memberships and the rings; a copy of
 * the descriptor gives the other options and the socket filter. Frames
 * queued on the socket or sitting in its ring are not carried: like the
 * network itself, a packet socket may lose frames, and its traffic goes on
 * after the restore.
 */
#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <linux/packet_diag.h>
#include <linux/sock_diag.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include "collect.h"
#include "files.h"
#include "stasis/log.h"
#include "stasis/proc.h"
#include "stasis/skfilter.h"
#include "stasis/sockdiag.h"
#include "stasis/util.h"

#ifndef PACKET_VNET_HDR_SZ
#define PACKET_VNET_HDR_SZ 24
#endif
#ifndef SO_LOCK_FILTER
#define SO_LOCK_FILTER 44
#endif

struct pk_diag_sk {
	uint32_t ino;
	uint8_t type;
	uint16_t protocol;
	bool has_info;
	struct packet_diag_info info;
	struct packet_diag_mclist *mc;
	size_t nr_mc;
	bool has_rx, has_tx;
	uint32_t rmem_alloc; /* bytes of frames queued */
	struct packet_diag_ring rx, tx;
};

static struct pk_diag_sk *diag;
static size_t nr_diag;
static int diag_state; /* 0 not loaded, 1 loaded, -1 failed */

static void get_ring(struct nlattr *a, bool *has, struct packet_diag_ring *r)
{
	if (!a || nla_len(a) < (int)sizeof(*r))
		return;
	*has = true;
	memcpy(r, nla_data(a), sizeof(*r));
}

static int diag_cb(struct nlmsghdr *nlh, void *arg)
{
	struct packet_diag_msg *m = nlmsg_data(nlh);
	struct nlattr *tb[PACKET_DIAG_MAX + 1];
	struct pk_diag_sk *s;

	(void)arg;
	if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*m)) ||
	    nlmsg_parse(nlh, sizeof(*m), tb, PACKET_DIAG_MAX, NULL) < 0) {
		pr_err("packet_diag: malformed packet socket record");
		return -1;
	}
	if (!(nr_diag & (nr_diag - 1)))
		diag = xrealloc(diag, (nr_diag ? 2 * nr_diag : 1) * sizeof(*diag));
	s = &diag[nr_diag++];
	memset(s, 0, sizeof(*s));
	s->ino = m->pdiag_ino;
	s->type = m->pdiag_type;
	s->protocol = m->pdiag_num;
	if (tb[PACKET_DIAG_INFO] && nla_len(tb[PACKET_DIAG_INFO]) >= (int)sizeof(s->info)) {
		s->has_info = true;
		memcpy(&s->info, nla_data(tb[PACKET_DIAG_INFO]), sizeof(s->info));
	}
	if (tb[PACKET_DIAG_MCLIST]) {
		s->nr_mc = nla_len(tb[PACKET_DIAG_MCLIST]) / sizeof(*s->mc);
		s->mc = xmalloc(s->nr_mc * sizeof(*s->mc) + 1);
		memcpy(s->mc, nla_data(tb[PACKET_DIAG_MCLIST]), s->nr_mc * sizeof(*s->mc));
	}
	if (tb[PACKET_DIAG_MEMINFO] && nla_len(tb[PACKET_DIAG_MEMINFO]) >=
					   (int)(sizeof(uint32_t) * (SK_MEMINFO_RMEM_ALLOC + 1)))
		s->rmem_alloc =
		    ((uint32_t *)nla_data(tb[PACKET_DIAG_MEMINFO]))[SK_MEMINFO_RMEM_ALLOC];
	get_ring(tb[PACKET_DIAG_RX_RING], &s->has_rx, &s->rx);
	get_ring(tb[PACKET_DIAG_TX_RING], &s->has_tx, &s->tx);
	return 0;
}

static bool load(void)
{
	struct packet_diag_req req = {
	    .sdiag_family = AF_PACKET,
	    .pdiag_show =
		PACKET_SHOW_INFO | PACKET_SHOW_MCLIST | PACKET_SHOW_RING_CFG | PACKET_SHOW_MEMINFO,
	};

	if (!diag_state)
		diag_state = sockdiag_dump(&req, sizeof(req), diag_cb, NULL) ? -1 : 1;
	return diag_state > 0;
}

static const struct pk_diag_sk *find(uint32_t ino)
{
	for (size_t i = 0; load() && i < nr_diag; i++)
		if (diag[i].ino == ino)
			return &diag[i];
	return NULL;
}

static uint64_t ring_bytes(bool has, const struct packet_diag_ring *r)
{
	return has ? (uint64_t)r->pdr_block_size * r->pdr_block_nr : 0;
}

/* Whether a task of the tree holds socket ino in a descriptor. */
static bool tree_holds(uint32_t ino)
{
	const struct tree *t = collect_tree();
	char want[32];

	snprintf(want, sizeof(want), "socket:[%u]", ino);
	for (int i = 0; i < t->nr; i++) {
		char path[64], fdpath[320], link[64];
		struct dirent *de;
		bool found = false;
		DIR *d;

		if (t->tasks[i].zombie)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd", t->tasks[i].pid);
		d = opendir(path);
		while (d && !found && (de = readdir(d))) {
			ssize_t n;

			snprintf(fdpath, sizeof(fdpath), "%s/%s", path, de->d_name);
			n = readlink(fdpath, link, sizeof(link) - 1);
			found = n > 0 && (link[n] = 0, !strcmp(link, want));
		}
		if (d)
			closedir(d);
		if (found)
			return true;
	}
	return false;
}

bool packet_ring_vma(const struct proc_vma *v)
{
	return !strncmp(v->path, "socket:[", 8);
}

int packet_collect_vma(struct ctask *ct, const struct proc_vma *v, Stasis__Vma *pv)
{
	const struct pk_diag_sk *d = find(v->ino);
	uint64_t size;

	if (!d) {
		pr_err("task %d: mapping %lx-%lx (%s) is not the ring of a packet socket, which "
		       "is the only socket mapping stasis supports",
		       ct->pid, v->start, v->end, v->path);
		return -1;
	}
	size = ring_bytes(d->has_rx, &d->rx) + ring_bytes(d->has_tx, &d->tx);
	if (v->pgoff || v->end - v->start != size) {
		pr_err(
		    "task %d: mapping %lx-%lx of packet socket %u covers part of its rings (%llu "
		    "bytes from offset %lu), which cannot be mapped again",
		    ct->pid, v->start, v->end, d->ino, (unsigned long long)size, v->pgoff);
		return -1;
	}
	if (!tree_holds(d->ino)) {
		pr_err("task %d: mapping %lx-%lx is the ring of packet socket %u, which no "
		       "descriptor of the tree holds any more",
		       ct->pid, v->start, v->end, d->ino);
		return -1;
	}
	pv->has_packet_ring = true;
	pv->packet_ring = d->ino;
	return 0;
}

int skfilter_collect(const struct fd_src *src, int fd, const char *what, Stasis__SkFilter **out)
{
	struct sock_filter *prog;
	socklen_t len;
	int locked = 0;
	size_t n;

	if (skfilter_get(fd, &prog, &n)) {
		if (errno == EINVAL)
			pr_err(
			    "fd %d of task %d: %s %lu has an eBPF socket filter (SO_ATTACH_BPF), "
			    "which stasis cannot carry",
			    src->fd, src->pid, what, (unsigned long)src->st.st_ino);
		else
			pr_perror("fd %d of task %d: cannot read the filter of %s %lu", src->fd,
				  src->pid, what, (unsigned long)src->st.st_ino);
		return -1;
	}
	if (!n)
		return 0;
	*out = xmalloc(sizeof(**out));
	stasis__sk_filter__init(*out);
	(*out)->code.data = (uint8_t *)prog;
	(*out)->code.len = n * sizeof(*prog);
	len = sizeof(locked);
	if (!getsockopt(fd, SOL_SOCKET, SO_LOCK_FILTER, &locked, &len) && locked)
		(*out)->has_locked = (*out)->locked = true;
	return 0;
}

Stasis__SkCommon *sk_common_collect(int fd)
{
	Stasis__SkCommon *c = xmalloc(sizeof(*c));
	struct timeval tv;
	socklen_t len;
	bool any = false;
	int v;

	stasis__sk_common__init(c);
#define SK_FLAG(opt, f)                                                                            \
	do {                                                                                       \
		len = sizeof(v);                                                                   \
		if (!getsockopt(fd, SOL_SOCKET, opt, &v, &len) && v)                               \
			any = true, c->has_##f = c->f = true;                                      \
	} while (0)
	SK_FLAG(SO_PASSCRED, passcred);
	SK_FLAG(SO_TIMESTAMP, timestamp);
	SK_FLAG(SO_TIMESTAMPNS, timestampns);
#undef SK_FLAG
	len = sizeof(tv);
	if (!getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) && (tv.tv_sec || tv.tv_usec)) {
		any = true;
		c->has_rcvtimeo_us = true;
		c->rcvtimeo_us = tv.tv_sec * 1000000ull + tv.tv_usec;
	}
	len = sizeof(tv);
	if (!getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &len) && (tv.tv_sec || tv.tv_usec)) {
		any = true;
		c->has_sndtimeo_us = true;
		c->sndtimeo_us = tv.tv_sec * 1000000ull + tv.tv_usec;
	}
	len = sizeof(v);
	if (!getsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v, &len) && v > 1) {
		any = true;
		c->has_rcvlowat = true;
		c->rcvlowat = v;
	}
	if (!any) {
		free(c);
		return NULL;
	}
	return c;
}

static bool match(const struct fd_src *src)
{
	return fd_src_sock_family(src) == AF_PACKET;
}

static Stasis__PacketRing *ring(const struct packet_diag_ring *r)
{
	Stasis__PacketRing *pr = xmalloc(sizeof(*pr));

	stasis__packet_ring__init(pr);
	pr->block_size = r->pdr_block_size;
	pr->block_nr = r->pdr_block_nr;
	pr->frame_size = r->pdr_frame_size;
	pr->frame_nr = r->pdr_frame_nr;
	pr->has_retire_tmo = pr->has_sizeof_priv = pr->has_features = true;
	pr->retire_tmo = r->pdr_retire_tmo;
	pr->sizeof_priv = r->pdr_sizeof_priv;
	pr->features = r->pdr_features;
	return pr;
}

static int getint(int fd, int level, int opt, int *val)
{
	socklen_t len = sizeof(*val);

	*val = 0;
	return getsockopt(fd, level, opt, val, &len);
}

static void options(int fd, Stasis__PacketSk *sk)
{
	int v;

	if (sk->type != SOCK_PACKET) {
		if (!getint(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &v) && v)
			sk->has_qdisc_bypass = sk->qdisc_bypass = true;
		if (!getint(fd, SOL_PACKET, PACKET_TX_HAS_OFF, &v) && v)
			sk->has_tx_has_off = sk->tx_has_off = true;
		if (!getint(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &v) && v)
			sk->has_ignore_outgoing = sk->ignore_outgoing = true;
		if (!getint(fd, SOL_PACKET, PACKET_VNET_HDR_SZ, &v) && v) {
			sk->has_vnet_hdr_sz = true;
			sk->vnet_hdr_sz = v;
		}
	}
	if (!getint(fd, SOL_SOCKET, SO_SNDBUF, &v)) {
		sk->has_sndbuf = true;
		sk->sndbuf = v;
	}
	if (!getint(fd, SOL_SOCKET, SO_RCVBUF, &v)) {
		sk->has_rcvbuf = true;
		sk->rcvbuf = v;
	}
	if (!getint(fd, SOL_SOCKET, SO_MARK, &v) && v) {
		sk->has_mark = true;
		sk->mark = v;
	}
	if (!getint(fd, SOL_SOCKET, SO_PRIORITY, &v) && v) {
		sk->has_priority = true;
		sk->priority = v;
	}
	sk->common = sk_common_collect(fd);
}

static void info(const struct pk_diag_sk *d, Stasis__PacketSk *sk)
{
	const struct packet_diag_info *i = &d->info;

	sk->has_version = sk->has_reserve = sk->has_copy_thresh = sk->has_tstamp = true;
	sk->version = i->pdi_version;
	sk->reserve = i->pdi_reserve;
	sk->copy_thresh = i->pdi_copy_thresh;
	sk->tstamp = i->pdi_tstamp;
	sk->has_auxdata = sk->auxdata = i->pdi_flags & PDI_AUXDATA;
	sk->has_origdev = sk->origdev = i->pdi_flags & PDI_ORIGDEV;
	sk->has_vnet_hdr = sk->vnet_hdr = i->pdi_flags & PDI_VNETHDR;
	sk->has_loss = sk->loss = i->pdi_flags & PDI_LOSS;
}

static int memberships(const struct fd_src *src, const struct pk_diag_sk *d, Stasis__PacketSk *sk)
{
	sk->mclist = xmalloc((d->nr_mc + 1) * sizeof(*sk->mclist));
	for (size_t i = 0; i < d->nr_mc; i++) {
		const struct packet_diag_mclist *m = &d->mc[i];
		Stasis__PacketMclist *mc = xmalloc(sizeof(*mc));

		if (m->pdmc_alen > sizeof(m->pdmc_addr)) {
			pr_err("fd %d of task %d: packet socket %u has a membership with a %u-byte "
			       "address",
			       src->fd, src->pid, d->ino, m->pdmc_alen);
			free(mc);
			return -1;
		}
		stasis__packet_mclist__init(mc);
		mc->ifindex = m->pdmc_index;
		mc->type = m->pdmc_type;
		mc->count = m->pdmc_count;
		if (m->pdmc_alen) {
			mc->has_addr = true;
			mc->addr.len = m->pdmc_alen;
			mc->addr.data = xmalloc(m->pdmc_alen);
			memcpy(mc->addr.data, m->pdmc_addr, m->pdmc_alen);
		}
		sk->mclist[sk->n_mclist++] = mc;
	}
	return 0;
}

/* packet_diag leaves out the fanout flags: getsockopt has them all */
static int fanout(const struct fd_src *src, int fd, Stasis__PacketSk *sk)
{
	unsigned type;
	int v;

	if (sk->type == SOCK_PACKET || getint(fd, SOL_PACKET, PACKET_FANOUT, &v) || !v)
		return 0;
	type = (v >> 16) & 0xff;
	if (type == PACKET_FANOUT_CBPF || type == PACKET_FANOUT_EBPF) {
		pr_err("fd %d of task %d: packet socket %u is in a fanout group steered by a BPF "
		       "program, which cannot be read back",
		       src->fd, src->pid, sk->ino);
		return -1;
	}
	sk->has_fanout = true;
	sk->fanout = v;
	return 0;
}

static int dump(const struct fd_src *src, Stasis__FileEntry *fe)
{
	Stasis__PacketSk *sk = xmalloc(sizeof(*sk));
	const struct pk_diag_sk *d;
	char ifname[IF_NAMESIZE];
	int fd, ret;

	stasis__packet_sk__init(sk);
	fe->type = STASIS__FD_TYPE__PACKETSK;
	fe->packetsk = sk;
	sk->ino = src->st.st_ino;
	d = find(sk->ino);
	if (!d || !d->has_info) {
		pr_err("fd %d of task %d: packet socket %u is not in packet_diag's list", src->fd,
		       src->pid, sk->ino);
		return -1;
	}
	sk->type = d->type;
	sk->protocol = d->protocol;
	if (d->type != SOCK_RAW && d->type != SOCK_DGRAM && d->type != SOCK_PACKET) {
		pr_err("fd %d of task %d: packet socket %u has type %d", src->fd, src->pid, sk->ino,
		       d->type);
		return -1;
	}
	if ((int32_t)d->info.pdi_index < 0) {
		pr_err("fd %d of task %d: packet socket %u was bound to an interface that is gone",
		       src->fd, src->pid, sk->ino);
		return -1;
	}
	if (d->info.pdi_index) {
		sk->has_ifindex = true;
		sk->ifindex = d->info.pdi_index;
		if (if_indextoname(d->info.pdi_index, ifname))
			sk->ifname = xstrdup(ifname);
	}
	if (d->rmem_alloc)
		pr_warn("packet socket %u of task %d: the frames queued on it (%u bytes) are not "
			"carried",
			sk->ino, src->pid, d->rmem_alloc);
	info(d, sk);
	if (memberships(src, d, sk))
		return -1;
	if (d->has_rx && d->rx.pdr_block_nr)
		sk->rx_ring = ring(&d->rx);
	if (d->has_tx && d->tx.pdr_block_nr)
		sk->tx_ring = ring(&d->tx);
	fd = fd_src_dup(src);
	if (fd < 0)
		return -1;
	ret = fanout(src, fd, sk) || skfilter_collect(src, fd, "packet socket", &sk->filter);
	options(fd, sk);
	close(fd);
	pr_debug("packet socket %u of task %d: type %u protocol %#x ifindex %d, version %u",
		 sk->ino, src->pid, sk->type, sk->protocol, sk->ifindex, sk->version);
	return ret ? -1 : 0;
}

const struct fd_dump_ops packetsk_dump_ops = {"packet socket", match, dump};
