// SPDX-License-Identifier: GPL-2.0
/*
 * Packet sockets: made again in stasis-inject in the order the kernel
 * needs (version, reserve and header options before the rings; bound
 * before joining a fanout group), then inherited by the task. A ring the
 * task had mapped is mapped again at its address from the restored socket
 * (the task holds it at its staging number while its memory is rebuilt).
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_packet.h>

#include "files.h"
#include "stasis/log.h"
#include "stasis/skfilter.h"
#include "stasis/util.h"

#ifndef PACKET_VNET_HDR_SZ
#define PACKET_VNET_HDR_SZ 24
#endif
#ifndef MAX_ADDR_LEN
#define MAX_ADDR_LEN 32
#endif

int skfilter_restore(int fd, const Stasis__SkFilter *f)
{
	if (!f)
		return 0;
	if (!f->code.len || f->code.len % sizeof(struct sock_filter)) {
		pr_err("a socket filter of %zu bytes is not a classic BPF program", f->code.len);
		errno = EINVAL;
		return -1;
	}
	return skfilter_set(fd, (const struct sock_filter *)f->code.data,
			    f->code.len / sizeof(struct sock_filter), f->locked);
}

static int set_buf(int fd, int opt, int force, uint32_t val)
{
	int v = val / 2; /* the kernel doubles what it is given */

	if (!setsockopt(fd, SOL_SOCKET, force, &v, sizeof(v)))
		return 0;
	return setsockopt(fd, SOL_SOCKET, opt, &v, sizeof(v));
}

int sock_set_bufs(int fd, bool has_snd, uint32_t snd, bool has_rcv, uint32_t rcv)
{
	return (has_snd && set_buf(fd, SO_SNDBUF, SO_SNDBUFFORCE, snd)) ||
	       (has_rcv && set_buf(fd, SO_RCVBUF, SO_RCVBUFFORCE, rcv));
}

int sk_common_restore(int fd, const Stasis__SkCommon *c)
{
	struct timeval tv;
	int on = 1, v;

	if (!c)
		return 0;
	if ((c->passcred && setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on))) ||
	    (c->timestamp && setsockopt(fd, SOL_SOCKET, SO_TIMESTAMP, &on, sizeof(on))) ||
	    (c->timestampns && setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on))))
		return -1;
	if (c->has_rcvtimeo_us) {
		tv = (struct timeval){c->rcvtimeo_us / 1000000, c->rcvtimeo_us % 1000000};
		if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)))
			return -1;
	}
	if (c->has_sndtimeo_us) {
		tv = (struct timeval){c->sndtimeo_us / 1000000, c->sndtimeo_us % 1000000};
		if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
			return -1;
	}
	v = c->rcvlowat;
	return c->has_rcvlowat && setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v)) ? -1 : 0;
}

static int set_int(int fd, int opt, bool has, uint32_t val)
{
	int v = val;

	return has ? setsockopt(fd, SOL_PACKET, opt, &v, sizeof(v)) : 0;
}

/* The interface the socket was bound to, by index, or by name if moved. */
static int find_ifindex(const Stasis__PacketSk *sk)
{
	char name[IF_NAMESIZE];
	unsigned idx;

	if (!sk->has_ifindex || !sk->ifindex)
		return 0;
	if (if_indextoname(sk->ifindex, name) && (!sk->ifname || !strcmp(name, sk->ifname)))
		return sk->ifindex;
	idx = sk->ifname ? if_nametoindex(sk->ifname) : 0;
	if (!idx) {
		pr_err("packet socket %u: its interface %s (index %d) is gone", sk->ino,
		       sk->ifname ? sk->ifname : "?", sk->ifindex);
		return -1;
	}
	return idx;
}

static int bind_packet(int fd, const Stasis__PacketSk *sk, int ifindex)
{
	if (sk->type == SOCK_PACKET) {
		struct sockaddr_pkt spkt = {.spkt_family = AF_PACKET,
					    .spkt_protocol = htons(sk->protocol)};
		char name[IF_NAMESIZE];

		if (!ifindex)
			return 0;
		if (!if_indextoname(ifindex, name))
			return -1;
		/* spkt_device need not end with a NUL: the kernel takes 14 bytes */
		memcpy(spkt.spkt_device, name, strnlen(name, sizeof(spkt.spkt_device)));
		/* the kernel takes a struct sockaddr: the device name in sa_data */
		return bind(fd, (struct sockaddr *)&spkt, sizeof(struct sockaddr));
	} else {
		struct sockaddr_ll ll = {.sll_family = AF_PACKET,
					 .sll_protocol = htons(sk->protocol),
					 .sll_ifindex = ifindex};

		if (!ifindex)
			return 0;
		return bind(fd, (struct sockaddr *)&ll, sizeof(ll));
	}
}

static int set_ring(int fd, int opt, const Stasis__PacketRing *r)
{
	struct tpacket_req3 req = {
	    .tp_block_size = r->block_size,
	    .tp_block_nr = r->block_nr,
	    .tp_frame_size = r->frame_size,
	    .tp_frame_nr = r->frame_nr,
	    .tp_retire_blk_tov = r->retire_tmo,
	    .tp_sizeof_priv = r->sizeof_priv,
	    .tp_feature_req_word = r->features,
	};

	return setsockopt(fd, SOL_PACKET, opt, &req, sizeof(req));
}

static int memberships(int fd, const Stasis__PacketSk *sk, int ifindex)
{
	for (size_t i = 0; i < sk->n_mclist; i++) {
		const Stasis__PacketMclist *m = sk->mclist[i];
		struct {
			struct packet_mreq mr;
			unsigned char more[MAX_ADDR_LEN - 8];
		} req = {};

		if (m->addr.len > MAX_ADDR_LEN || m->count > 65536) {
			pr_err("packet socket %u: invalid membership in the checkpoint", sk->ino);
			return -1;
		}
		/* on the bound interface, found again by name if it moved */
		req.mr.mr_ifindex =
		    sk->has_ifindex && m->ifindex == (uint32_t)sk->ifindex ? ifindex : (int)m->ifindex;
		req.mr.mr_type = m->type;
		req.mr.mr_alen = m->addr.len;
		memcpy(req.mr.mr_address, m->addr.data, m->addr.len);
		for (uint32_t n = 0; n < m->count; n++)
			if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &req, sizeof(req))) {
				pr_perror("packet socket %u: cannot add membership type %u on "
					  "interface %u",
					  sk->ino, m->type, m->ifindex);
				return -1;
			}
	}
	return 0;
}

static int packet_options(int fd, const Stasis__PacketSk *sk)
{
	/* PACKET_VERSION, RESERVE, VNET_HDR, LOSS, TX_HAS_OFF: before any ring */
	if (set_int(fd, PACKET_VERSION, sk->has_version, sk->version) ||
	    set_int(fd, PACKET_RESERVE, sk->has_reserve && sk->reserve, sk->reserve) ||
	    set_int(fd, PACKET_VNET_HDR, sk->vnet_hdr, 1) ||
	    set_int(fd, PACKET_VNET_HDR_SZ, sk->has_vnet_hdr_sz, sk->vnet_hdr_sz) ||
	    set_int(fd, PACKET_LOSS, sk->loss, 1) ||
	    set_int(fd, PACKET_TX_HAS_OFF, sk->tx_has_off, 1)) {
		pr_perror("packet socket %u: cannot set its version and header options", sk->ino);
		return -1;
	}
	if ((sk->rx_ring && set_ring(fd, PACKET_RX_RING, sk->rx_ring)) ||
	    (sk->tx_ring && set_ring(fd, PACKET_TX_RING, sk->tx_ring))) {
		pr_perror("packet socket %u: cannot set up its rings", sk->ino);
		return -1;
	}
	if (set_int(fd, PACKET_AUXDATA, sk->auxdata, 1) ||
	    set_int(fd, PACKET_ORIGDEV, sk->origdev, 1) ||
	    set_int(fd, PACKET_COPY_THRESH, sk->has_copy_thresh && sk->copy_thresh,
		    sk->copy_thresh) ||
	    set_int(fd, PACKET_TIMESTAMP, sk->has_tstamp && sk->tstamp, sk->tstamp) ||
	    set_int(fd, PACKET_QDISC_BYPASS, sk->qdisc_bypass, 1) ||
	    set_int(fd, PACKET_IGNORE_OUTGOING, sk->ignore_outgoing, 1)) {
		pr_perror("packet socket %u: cannot set its options", sk->ino);
		return -1;
	}
	return 0;
}

static int packetsk_open(Stasis__FileEntry *fe)
{
	const Stasis__PacketSk *sk = fe->packetsk;
	int fd, ifindex;

	if (!sk) {
		pr_err("file %u is a packet socket without its state", fe->id);
		return -1;
	}
	ifindex = find_ifindex(sk);
	if (ifindex < 0)
		return -1;
	fd = socket(AF_PACKET, sk->type, htons(sk->protocol));
	if (fd < 0) {
		pr_perror("packet socket %u: cannot create a socket of type %u", sk->ino, sk->type);
		return -1;
	}
	if (sk->type != SOCK_PACKET && packet_options(fd, sk))
		goto err_quiet;
	if (bind_packet(fd, sk, ifindex)) {
		pr_perror("packet socket %u: cannot bind it to interface %d", sk->ino, ifindex);
		goto err_quiet;
	}
	if (sk->type != SOCK_PACKET &&
	    (memberships(fd, sk, ifindex) ||
	     (sk->has_fanout && set_int(fd, PACKET_FANOUT, true,
					sk->fanout & ~(PACKET_FANOUT_FLAG_UNIQUEID << 16))))) {
		pr_perror("packet socket %u: cannot join its fanout group %#x", sk->ino,
			  sk->fanout);
		goto err_quiet;
	}
	if (skfilter_restore(fd, sk->filter) || sk_common_restore(fd, sk->common) ||
	    sock_set_bufs(fd, sk->has_sndbuf, sk->sndbuf, sk->has_rcvbuf, sk->rcvbuf) ||
	    (sk->has_mark && setsockopt(fd, SOL_SOCKET, SO_MARK, &sk->mark, sizeof(sk->mark))) ||
	    (sk->has_priority &&
	     setsockopt(fd, SOL_SOCKET, SO_PRIORITY, &sk->priority, sizeof(sk->priority)))) {
		pr_perror("packet socket %u: cannot set its socket options", sk->ino);
		goto err_quiet;
	}
	if ((fe->flags & O_NONBLOCK) && fcntl(fd, F_SETFL, O_NONBLOCK)) {
		pr_perror("packet socket %u: cannot set its flags", sk->ino);
		goto err_quiet;
	}
	return fd;
err_quiet:
	close(fd);
	return -1;
}

const struct fd_restore_ops packetsk_restore_ops = {STASIS__FD_TYPE__PACKETSK, packetsk_open, NULL};

/* The id of the description of packet socket ino in the files image. */
static uint32_t socket_file(uint32_t ino)
{
	unsigned n = records_count("files");
	uint32_t id = 0;

	for (unsigned i = 0; i < n && !id; i++) {
		Stasis__FileEntry *fe = records_get("files", i, &stasis__file_entry__descriptor);

		if (fe && fe->type == STASIS__FD_TYPE__PACKETSK && fe->packetsk &&
		    fe->packetsk->ino == ino)
			id = fe->id;
		if (fe)
			protobuf_c_message_free_unpacked(&fe->base, NULL);
	}
	return id;
}

long packet_ring_open(struct itask *t, Stasis__Vma *v)
{
	uint32_t id = socket_file(v->packet_ring);
	int fd = id ? files_staged_fd(id) : -1;

	if (fd < 0) {
		pr_err("task %d: the ring at %#llx belongs to packet socket %u, which the "
		       "checkpoint does not restore",
		       t->pid, (unsigned long long)v->start, v->packet_ring);
		return -1;
	}
	/* the task's own copy of the staged socket: mmap does not keep it */
	return ISYS(t, SYS_fcntl, fd, F_DUPFD_CLOEXEC, 0);
}
