// SPDX-License-Identifier: GPL-2.0
/*
 * Inet sockets: TCP, UDP, UDP-lite, ICMP echo and raw, IPv4 and IPv6. A
 * copy of the descriptor (pidfd_getfd) gives the kind, the names, the TCP
 * state and the options; sock_diag what no descriptor shows (the backlog,
 * connections not accepted yet, shutdown). An established connection is
 * read in repair mode (TCP_REPAIR): sequence numbers, both queues and the
 * negotiated options. Repair mode stays on until the tree's fate is known:
 * a killed tree's connections then close without a FIN or RST, and a tree
 * that runs again gets its sockets back out of repair mode.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <linux/inet_diag.h>
#include <linux/sockios.h>
#include <net/if.h>

#include "collect.h"
#include "files.h"
#include "stasis/log.h"
#include "stasis/netlock.h"
#include "stasis/skfilter.h"
#include "stasis/sockdiag.h"
#include "stasis/util.h"

#ifndef SIOCOUTQNSD
#define SIOCOUTQNSD 0x894B
#endif
#ifndef SO_LOCK_FILTER
#define SO_LOCK_FILTER 44
#endif
#ifndef SO_BUF_LOCK
#define SO_BUF_LOCK 72
#endif
#ifndef IPV6_FREEBIND
#define IPV6_FREEBIND 78
#endif
#ifndef SOL_UDPLITE
#define SOL_UDPLITE 136
#endif
#ifndef UDPLITE_SEND_CSCOV
#define UDPLITE_SEND_CSCOV 10
#define UDPLITE_RECV_CSCOV 11
#endif

#define RCV_SHUTDOWN  1
#define SEND_SHUTDOWN 2

/* A record is one frame (at most 4 MiB): bigger queues go to tcp-recvq
 * and tcp-sendq in pieces. */
#define INLINE_MAX (1u << 20)
#define PIECE	   (1u << 20)
#define QUEUE_MAX  (256u << 20)

/* A queue written after the files image. */
struct big_queue {
	const char *image;
	uint32_t ino;
	ProtobufCBinaryData data;
};

static struct big_queue *big_queues;
static size_t nr_big_queues;

static void move_out(const char *image, uint32_t ino, ProtobufCBinaryData *q, uint32_t *size)
{
	big_queues = xrealloc(big_queues, (nr_big_queues + 1) * sizeof(*big_queues));
	big_queues[nr_big_queues++] = (struct big_queue){image, ino, *q};
	*size = q->len;
	q->data = NULL;
	q->len = 0;
}

int inet_write(struct img_writer *w)
{
	for (size_t i = 0; i < nr_big_queues; i++) {
		struct big_queue *b = &big_queues[i];

		for (size_t off = 0; off < b->data.len; off += PIECE) {
			Stasis__DataChunk c = STASIS__DATA_CHUNK__INIT;

			c.id = b->ino;
			c.offset = off;
			c.data.data = b->data.data + off;
			c.data.len = b->data.len - off < PIECE ? b->data.len - off : PIECE;
			if (imgw_record(w, b->image, &c.base))
				return -1;
		}
	}
	return 0;
}

static struct inet_diag_table diag;
static int diag_state; /* 0 not loaded, 1 loaded, -1 failed */

/* Sockets put in repair mode: our copy, and SO_REUSEADDR as it was
 * (leaving repair mode clears it). */
struct repaired {
	int fd;
	int reuseaddr;
};

static struct repaired *repaired;
static size_t nr_repaired;

/* linux/icmp.h, whose includes clash with net/if.h (ICMP6_FILTER: 1 too) */
#ifndef ICMP6_FILTER
#define ICMP6_FILTER 1
#endif
#ifndef ICMP_FILTER
#define ICMP_FILTER 1
#endif

/* The integer options carried when they differ from a new socket's. */
static const struct {
	int level, name;
	const char *what;
} inet_int_opts[] = {
	{SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR"},
	{SOL_SOCKET, SO_REUSEPORT, "SO_REUSEPORT"},
	{SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE"},
	{SOL_SOCKET, SO_BROADCAST, "SO_BROADCAST"},
	{SOL_SOCKET, SO_PRIORITY, "SO_PRIORITY"},
	{SOL_SOCKET, SO_MARK, "SO_MARK"},
	{SOL_SOCKET, SO_RCVLOWAT, "SO_RCVLOWAT"},
	{SOL_SOCKET, SO_DONTROUTE, "SO_DONTROUTE"},
	{SOL_SOCKET, SO_NO_CHECK, "SO_NO_CHECK"},
	{SOL_SOCKET, SO_OOBINLINE, "SO_OOBINLINE"},
	{SOL_SOCKET, SO_PASSCRED, "SO_PASSCRED"},
	{SOL_SOCKET, SO_PASSSEC, "SO_PASSSEC"},
	{SOL_SOCKET, SO_TIMESTAMP, "SO_TIMESTAMP"},
	{SOL_SOCKET, SO_TIMESTAMPNS, "SO_TIMESTAMPNS"},
	{SOL_SOCKET, SO_BUF_LOCK, "SO_BUF_LOCK"},
	{SOL_IP, IP_TOS, "IP_TOS"},
	{SOL_IP, IP_TTL, "IP_TTL"},
	{SOL_IP, IP_FREEBIND, "IP_FREEBIND"},
	{SOL_IP, IP_TRANSPARENT, "IP_TRANSPARENT"},
	{SOL_IP, IP_BIND_ADDRESS_NO_PORT, "IP_BIND_ADDRESS_NO_PORT"},
	{SOL_IP, IP_PKTINFO, "IP_PKTINFO"},
	{SOL_IP, IP_RECVTTL, "IP_RECVTTL"},
	{SOL_IP, IP_RECVTOS, "IP_RECVTOS"},
	{SOL_IP, IP_RECVERR, "IP_RECVERR"},
	{SOL_IP, IP_MTU_DISCOVER, "IP_MTU_DISCOVER"},
	{SOL_IP, IP_MULTICAST_TTL, "IP_MULTICAST_TTL"},
	{SOL_IP, IP_MULTICAST_LOOP, "IP_MULTICAST_LOOP"},
	{SOL_IP, IP_MULTICAST_ALL, "IP_MULTICAST_ALL"},
	{SOL_IP, IP_HDRINCL, "IP_HDRINCL"},
	/* the ICMP types a raw ICMP socket drops (a u32 mask) */
	{SOL_RAW, ICMP_FILTER, "ICMP_FILTER"},
	{SOL_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY"},
	{SOL_IPV6, IPV6_UNICAST_HOPS, "IPV6_UNICAST_HOPS"},
	{SOL_IPV6, IPV6_MULTICAST_HOPS, "IPV6_MULTICAST_HOPS"},
	{SOL_IPV6, IPV6_MULTICAST_LOOP, "IPV6_MULTICAST_LOOP"},
	{SOL_IPV6, IPV6_MULTICAST_IF, "IPV6_MULTICAST_IF"},
	{SOL_IPV6, IPV6_TCLASS, "IPV6_TCLASS"},
	{SOL_IPV6, IPV6_FREEBIND, "IPV6_FREEBIND"},
	{SOL_IPV6, IPV6_TRANSPARENT, "IPV6_TRANSPARENT"},
	{SOL_IPV6, IPV6_RECVPKTINFO, "IPV6_RECVPKTINFO"},
	{SOL_IPV6, IPV6_RECVERR, "IPV6_RECVERR"},
	{SOL_IPV6, IPV6_MTU_DISCOVER, "IPV6_MTU_DISCOVER"},
	{SOL_TCP, TCP_NODELAY, "TCP_NODELAY"},
	{SOL_TCP, TCP_CORK, "TCP_CORK"},
	{SOL_TCP, TCP_KEEPIDLE, "TCP_KEEPIDLE"},
	{SOL_TCP, TCP_KEEPINTVL, "TCP_KEEPINTVL"},
	{SOL_TCP, TCP_KEEPCNT, "TCP_KEEPCNT"},
	{SOL_TCP, TCP_USER_TIMEOUT, "TCP_USER_TIMEOUT"},
	{SOL_TCP, TCP_SYNCNT, "TCP_SYNCNT"},
	{SOL_TCP, TCP_LINGER2, "TCP_LINGER2"},
	{SOL_TCP, TCP_NOTSENT_LOWAT, "TCP_NOTSENT_LOWAT"},
	{SOL_TCP, TCP_DEFER_ACCEPT, "TCP_DEFER_ACCEPT"},
	{SOL_UDP, UDP_CORK, "UDP_CORK"},
	{SOL_UDPLITE, UDPLITE_SEND_CSCOV, "UDPLITE_SEND_CSCOV"},
	{SOL_UDPLITE, UDPLITE_RECV_CSCOV, "UDPLITE_RECV_CSCOV"},
	{0, 0, NULL},
};

static bool load(void)
{
	if (!diag_state)
		diag_state = sockdiag_inet_load(&diag) ? -1 : 1;
	return diag_state > 0;
}

static int getint(int fd, int level, int name, int *val)
{
	socklen_t len = sizeof(*val);

	*val = 0;
	return getsockopt(fd, level, name, val, &len);
}

/* A TCP connection or listener; a raw socket of protocol TCP is not one. */
static bool tcp_stream(const Stasis__InetSk *sk)
{
	return sk->type == SOCK_STREAM && sk->protocol == IPPROTO_TCP;
}

static const char *proto_name(int type, int protocol)
{
	switch (protocol) {
	case IPPROTO_TCP:
		return type == SOCK_RAW ? "raw TCP" : "TCP";
	case IPPROTO_UDP:
		return "UDP";
	case IPPROTO_UDPLITE:
		return "UDP-lite";
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return type == SOCK_RAW ? "raw ICMP" : "ICMP";
	default:
		return type == SOCK_RAW ? "raw" : "inet";
	}
}

/* Which kinds of inet socket stasis carries. */
static bool supported(int family, int type, int protocol)
{
	if (family != AF_INET && family != AF_INET6)
		return false;
	switch (type) {
	case SOCK_STREAM:
		return protocol == IPPROTO_TCP;
	case SOCK_DGRAM:
		return protocol == IPPROTO_UDP || protocol == IPPROTO_UDPLITE ||
		       protocol == (family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6);
	case SOCK_RAW:
		return true;
	}
	return false;
}

static bool match(const struct fd_src *src)
{
	int fd, family = 0;

	if (!S_ISSOCK(src->st.st_mode))
		return false;
	fd = fd_src_dup(src);
	if (fd < 0)
		return false;
	getint(fd, SOL_SOCKET, SO_DOMAIN, &family);
	close(fd);
	/* other inet kinds are refused by dump() with their name */
	return family == AF_INET || family == AF_INET6;
}

static void set_bytes(ProtobufCBinaryData *b, const void *data, size_t len)
{
	b->data = xmalloc(len + 1);
	memcpy(b->data, data, len);
	b->len = len;
}

/* An address and port (host order) of sockaddr sa. */
static void split_addr(const struct sockaddr_storage *sa, const void **addr, size_t *alen,
		       uint16_t *port)
{
	if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		*addr = &s6->sin6_addr;
		*alen = 16;
		*port = ntohs(s6->sin6_port);
	} else {
		const struct sockaddr_in *s4 = (const void *)sa;

		*addr = &s4->sin_addr;
		*alen = 4;
		*port = ntohs(s4->sin_port);
	}
}

static bool any_addr(const void *addr, size_t len)
{
	static const uint8_t zero[16];

	return !memcmp(addr, zero, len);
}

/* "ADDR:PORT" for messages. */
static const char *inet_show(int family, const void *addr, unsigned port, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN] = "?";

	inet_ntop(family, addr, a, sizeof(a));
	snprintf(buf, size, family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, port);
	return buf;
}

static int names(int fd, Stasis__InetSk *sk)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	const void *addr;
	size_t alen;
	uint16_t port;

	memset(&sa, 0, sizeof(sa));
	if (getsockname(fd, (struct sockaddr *)&sa, &len))
		return -1;
	split_addr(&sa, &addr, &alen, &port);
	/* a raw socket reads its protocol as its port: only an address binds it */
	if (sk->type == SOCK_RAW)
		port = 0;
	if (port || !any_addr(addr, alen)) {
		sk->has_src_addr = sk->has_src_port = true;
		set_bytes(&sk->src_addr, addr, alen);
		sk->src_port = port;
	}
	len = sizeof(sa);
	memset(&sa, 0, sizeof(sa));
	if (!getpeername(fd, (struct sockaddr *)&sa, &len)) {
		split_addr(&sa, &addr, &alen, &port);
		sk->has_dst_addr = sk->has_dst_port = true;
		set_bytes(&sk->dst_addr, addr, alen);
		sk->dst_port = sk->type == SOCK_RAW ? 0 : port;
	}
	return 0;
}

static bool multicast(int level, int name)
{
	if (level == SOL_IP)
		return name == IP_MULTICAST_TTL || name == IP_MULTICAST_LOOP ||
		       name == IP_MULTICAST_ALL;
	return level == SOL_IPV6 && (name == IPV6_MULTICAST_HOPS || name == IPV6_MULTICAST_LOOP ||
				     name == IPV6_MULTICAST_IF);
}

/* The values of inet_int_opts on a new socket of the same kind; false
 * when none can be made (then every readable value is carried). */
static bool defaults(const Stasis__InetSk *sk, int *vals, int *sndbuf, int *rcvbuf)
{
	int fd = socket(sk->family, sk->type | SOCK_CLOEXEC, sk->protocol);

	if (fd < 0)
		return false;
	for (int i = 0; inet_int_opts[i].what; i++)
		if (getint(fd, inet_int_opts[i].level, inet_int_opts[i].name, &vals[i]))
			vals[i] = INT32_MIN;
	getint(fd, SOL_SOCKET, SO_SNDBUF, sndbuf);
	getint(fd, SOL_SOCKET, SO_RCVBUF, rcvbuf);
	close(fd);
	return true;
}

static bool carried(const Stasis__SkOpts *o, int level, int name)
{
	for (size_t i = 0; i < o->n_ints; i++)
		if ((int)o->ints[i]->level == level && (int)o->ints[i]->name == name)
			return true;
	return false;
}

static void add_int(Stasis__SkOpts *o, int level, int name, int value)
{
	Stasis__SkIntOpt *io = xmalloc(sizeof(*io));

	stasis__sk_int_opt__init(io);
	io->level = level;
	io->name = name;
	io->value = value;
	o->ints[o->n_ints++] = io;
}

static int options(const struct fd_src *src, int fd, Stasis__InetSk *sk)
{
	int vals[ARRAY_SIZE(inet_int_opts)], sndbuf = -1, rcvbuf = -1, v;
	Stasis__SkOpts *o = xmalloc(sizeof(*o));
	bool have_defaults = defaults(sk, vals, &sndbuf, &rcvbuf);
	struct sock_filter *prog;
	struct linger lg;
	struct timeval tv;
	char dev[IFNAMSIZ + 1];
	size_t n;
	socklen_t len;

	stasis__sk_opts__init(o);
	sk->opts = o;
	o->ints = xmalloc((ARRAY_SIZE(inet_int_opts) + 1) * sizeof(*o->ints));
	for (int i = 0; inet_int_opts[i].what; i++) {
		if (getint(fd, inet_int_opts[i].level, inet_int_opts[i].name, &v))
			continue;
		/* an accepted socket's multicast TTL is its SYN's: TCP cannot set it */
		if (sk->type == SOCK_STREAM && multicast(inet_int_opts[i].level, inet_int_opts[i].name))
			continue;
		if (have_defaults && v == vals[i])
			continue;
		add_int(o, inet_int_opts[i].level, inet_int_opts[i].name, v);
	}
	if (!getint(fd, SOL_SOCKET, SO_SNDBUF, &v) && v != sndbuf) {
		o->has_sndbuf = true;
		o->sndbuf = v;
	}
	if (!getint(fd, SOL_SOCKET, SO_RCVBUF, &v) && v != rcvbuf) {
		o->has_rcvbuf = true;
		o->rcvbuf = v;
	}
	/* setting a buffer locks it: SO_BUF_LOCK goes back after them */
	if ((o->has_sndbuf || o->has_rcvbuf) && !getint(fd, SOL_SOCKET, SO_BUF_LOCK, &v) &&
	    !carried(o, SOL_SOCKET, SO_BUF_LOCK))
		add_int(o, SOL_SOCKET, SO_BUF_LOCK, v);
	len = sizeof(tv);
	if (!getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) && (tv.tv_sec || tv.tv_usec)) {
		o->has_rcvtimeo_us = true;
		o->rcvtimeo_us = tv.tv_sec * 1000000ull + tv.tv_usec;
	}
	len = sizeof(tv);
	if (!getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &len) && (tv.tv_sec || tv.tv_usec)) {
		o->has_sndtimeo_us = true;
		o->sndtimeo_us = tv.tv_sec * 1000000ull + tv.tv_usec;
	}
	len = sizeof(lg);
	if (!getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &len) && (lg.l_onoff || lg.l_linger)) {
		o->has_linger_on = o->has_linger_s = true;
		o->linger_on = lg.l_onoff;
		o->linger_s = lg.l_linger;
	}
	len = sizeof(dev) - 1;
	memset(dev, 0, sizeof(dev));
	if (!getsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, &len) && len && dev[0])
		o->bindtodevice = xstrdup(dev);
	if (sk->family == AF_INET6 && sk->type == SOCK_RAW && sk->protocol == IPPROTO_ICMPV6) {
		uint8_t f6[32] = {0}, none[32] = {0};

		len = sizeof(f6);
		if (!getsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, f6, &len) && len == sizeof(f6) &&
		    memcmp(f6, none, sizeof(f6))) {
			set_bytes(&o->icmp6_filter, f6, sizeof(f6));
			o->has_icmp6_filter = true;
		}
	}
	if (skfilter_get(fd, &prog, &n)) {
		if (errno == EINVAL)
			pr_err("fd %d of task %d: %s socket %u has an eBPF socket filter "
			       "(SO_ATTACH_BPF), which stasis cannot carry",
			       src->fd, src->pid, proto_name(sk->type, sk->protocol), sk->ino);
		else
			pr_perror("fd %d of task %d: cannot read the socket filter", src->fd,
				  src->pid);
		return -1;
	}
	if (n) {
		set_bytes(&o->filter, prog, n * sizeof(*prog));
		o->has_filter = true;
		free(prog);
		if (!getint(fd, SOL_SOCKET, SO_LOCK_FILTER, &v) && v)
			o->has_filter_locked = o->filter_locked = true;
	}
	return 0;
}

/* The value of an integer option as carried (or as it was on a new socket). */
static int carried_int(const Stasis__InetSk *sk, int level, int name, int dflt)
{
	for (size_t i = 0; i < sk->opts->n_ints; i++)
		if ((int)sk->opts->ints[i]->level == level && (int)sk->opts->ints[i]->name == name)
			return sk->opts->ints[i]->value;
	return dflt;
}

static int set_repair(int fd, int on)
{
	return setsockopt(fd, SOL_TCP, TCP_REPAIR, &on, sizeof(on));
}

static int select_queue(int fd, int queue)
{
	return setsockopt(fd, SOL_TCP, TCP_REPAIR_QUEUE, &queue, sizeof(queue));
}

/* The sizes and sequence numbers that must not move while a queue is read. */
struct tcp_marks {
	int inq, outq, unsent;
	uint32_t rcv_seq, snd_seq;
};

static bool fin_sent(int state)
{
	return state == TCP_FIN_WAIT1 || state == TCP_FIN_WAIT2 || state == TCP_CLOSING ||
	       state == TCP_LAST_ACK;
}

static bool fin_received(int state)
{
	return state == TCP_CLOSE_WAIT || state == TCP_CLOSING || state == TCP_LAST_ACK;
}

/*
 * The bytes received and not read, urgent mark or not: sock_diag's count
 * (SIOCINQ stops at a mark), for this very socket (its cookie).
 */
static int recv_queued(int fd, const Stasis__InetSk *sk, int *inq)
{
	struct inet_diag_req_v2 req = {
	    .sdiag_family = sk->family, .sdiag_protocol = IPPROTO_TCP, .idiag_states = ~0U};
	struct inet_diag_sk d;
	uint64_t cookie;
	socklen_t len = sizeof(cookie);
	int ifindex = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len))
		return -1;
	len = sizeof(ifindex);
	getsockopt(fd, SOL_SOCKET, SO_BINDTOIFINDEX, &ifindex, &len);
	req.id.idiag_sport = htons(sk->src_port);
	req.id.idiag_dport = htons(sk->dst_port);
	memcpy(req.id.idiag_src, sk->src_addr.data, sk->src_addr.len < 16 ? sk->src_addr.len : 16);
	memcpy(req.id.idiag_dst, sk->dst_addr.data, sk->dst_addr.len < 16 ? sk->dst_addr.len : 16);
	req.id.idiag_if = ifindex;
	req.id.idiag_cookie[0] = (uint32_t)cookie;
	req.id.idiag_cookie[1] = (uint32_t)(cookie >> 32);
	if (sockdiag_inet_query(&req, &d)) {
		errno = ENOENT;
		return -1;
	}
	*inq = (int)d.rqueue;
	return 0;
}

/* Sizes and sequence numbers of the data alone: a FIN takes a sequence
 * number (and a place in the send queue) but holds no byte. */
static int read_marks(int fd, const Stasis__InetSk *sk, struct tcp_marks *m)
{
	socklen_t len = sizeof(uint32_t);
	int state = sk->state;

	if (recv_queued(fd, sk, &m->inq) || ioctl(fd, SIOCOUTQ, &m->outq) ||
	    ioctl(fd, SIOCOUTQNSD, &m->unsent) || select_queue(fd, TCP_RECV_QUEUE) ||
	    getsockopt(fd, SOL_TCP, TCP_QUEUE_SEQ, &m->rcv_seq, &len) ||
	    select_queue(fd, TCP_SEND_QUEUE) ||
	    getsockopt(fd, SOL_TCP, TCP_QUEUE_SEQ, &m->snd_seq, &len))
		return -1;
	if (fin_sent(state)) {
		m->outq -= m->outq > 0;
		m->unsent -= m->unsent > 0;
		m->snd_seq--;
	}
	if (fin_received(state)) {
		m->inq -= m->inq > 0;
		m->rcv_seq--;
	}
	return select_queue(fd, TCP_NO_QUEUE);
}

static int peek_queue(int fd, int queue, size_t len, ProtobufCBinaryData *out)
{
	uint8_t *buf = xmalloc(len + 1);
	ssize_t n;

	if (select_queue(fd, queue)) {
		free(buf);
		return -1;
	}
	n = len ? recv(fd, buf, len + 1, MSG_PEEK | MSG_DONTWAIT) : 0;
	select_queue(fd, TCP_NO_QUEUE);
	if (n != (ssize_t)len) {
		free(buf);
		if (n >= 0)
			errno = EAGAIN;
		return -1;
	}
	out->data = buf;
	out->len = len;
	return 0;
}

/*
 * The receive queue with its urgent mark (MSG_OOB data), in sequence space:
 * the urgent byte keeps its place even where reads skip it. A peek stops
 * at the mark once it has copied something, and skips the byte itself
 * unless SO_OOBINLINE; so the queue is peeked up to the mark, then from it
 * (SO_PEEK_OFF), and the byte taken with MSG_OOB | MSG_PEEK. An urgent
 * pointer whose byte has not arrived yet cannot be given back: refused.
 * Fails with errno EAGAIN when the queue moved meanwhile.
 */
static int peek_recv_queue(const struct fd_src *src, int fd, const Stasis__InetSk *sk, size_t len,
			   Stasis__TcpStream *ts, const char *conn)
{
	bool inline_urg = carried_int(sk, SOL_SOCKET, SO_OOBINLINE, 0);
	int atmark = 0, peek_off = -1, off;
	socklen_t olen = sizeof(peek_off);
	uint8_t *buf = xmalloc(len + 1), urg = 0;
	ssize_t n, m = 0, oob;
	size_t mark;

	ts->has_urg_offset = ts->has_urg_read = false;
	if (!len)
		goto done;
	if (ioctl(fd, SIOCATMARK, &atmark) || select_queue(fd, TCP_RECV_QUEUE))
		goto err;
	oob = recv(fd, &urg, 1, MSG_OOB | MSG_PEEK | MSG_DONTWAIT);
	if (oob < 0 && errno != EINVAL) {
		select_queue(fd, TCP_NO_QUEUE);
		pr_err("fd %d of task %d: TCP connection %s: its peer announced urgent data that "
		       "has not arrived yet; stasis cannot give that back",
		       src->fd, src->pid, conn);
		free(buf);
		errno = 0;
		return -2;
	}
	n = recv(fd, buf, len + 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0)
		goto moved;
	if ((size_t)n == len && !atmark) {
		/* no mark, or one already read through */
		if (oob == 1)
			goto moved;
		select_queue(fd, TCP_NO_QUEUE);
		goto done;
	}
	/* the mark: where the peek stopped, or at the start */
	mark = atmark ? 0 : (size_t)n;
	if (mark) {
		if (getsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &peek_off, &olen))
			goto err;
		off = (int)mark;
		if (setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)))
			goto err;
		m = recv(fd, buf + mark + !inline_urg, len - mark, MSG_PEEK | MSG_DONTWAIT);
		setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &peek_off, sizeof(peek_off));
		if (m < 0 && errno == EAGAIN)
			m = 0;
	} else {
		/* at the mark: the peek went on past it */
		memmove(buf + !inline_urg, buf, (size_t)n);
		m = n;
	}
	if (m < 0 || (size_t)m != len - mark - !inline_urg)
		goto moved;
	if (!inline_urg)
		buf[mark] = oob == 1 ? urg : 0;
	ts->has_urg_offset = true;
	ts->urg_offset = (uint32_t)mark;
	/* non-inline, and MSG_OOB has nothing: the task read the byte already */
	ts->has_urg_read = !inline_urg && oob != 1;
	ts->urg_read = ts->has_urg_read;
	pr_info("TCP connection %s of task %d: urgent mark at byte %zu of %zu received%s", conn,
		src->pid, mark, len,
		inline_urg ? " (SO_OOBINLINE)" : ts->urg_read ? " (its byte already read)" : "");
	select_queue(fd, TCP_NO_QUEUE);
done:
	ts->recv_queue.data = buf;
	ts->recv_queue.len = len;
	return 0;
moved:
	select_queue(fd, TCP_NO_QUEUE);
	free(buf);
	errno = EAGAIN;
	return -1;
err:
	select_queue(fd, TCP_NO_QUEUE);
	free(buf);
	return -1;
}

/*
 * Reads the connection in repair mode. The kernel still takes packets
 * meanwhile (acknowledgements, data from a peer outside the tree), so the
 * queues are read again until sizes and sequence numbers held still.
 */
static int read_stream(const struct fd_src *src, int fd, Stasis__InetSk *sk, const char *conn)
{
	Stasis__TcpStream *ts = xmalloc(sizeof(*ts));
	struct tcp_repair_window win;
	struct tcp_marks before, after;
	struct tcp_info ti;
	socklen_t len;
	int v, tries, r;

	stasis__tcp_stream__init(ts);
	sk->tcp = ts;
	for (tries = 0; tries < 10; tries++) {
		free(ts->recv_queue.data);
		free(ts->send_queue.data);
		ts->recv_queue.data = ts->send_queue.data = NULL;
		len = sizeof(ti);
		if (getsockopt(fd, SOL_TCP, TCP_INFO, &ti, &len))
			goto err;
		sk->state = ti.tcpi_state;
		if (read_marks(fd, sk, &before))
			goto err;
		if ((unsigned)before.inq + before.outq > QUEUE_MAX) {
			pr_err("fd %d of task %d: TCP connection %s has %d bytes queued, more than "
			       "stasis carries (256 MiB)",
			       src->fd, src->pid, conn, before.inq + before.outq);
			return -1;
		}
		r = peek_recv_queue(src, fd, sk, before.inq, ts, conn);
		if (r == -2)
			return -1;
		if (r || peek_queue(fd, TCP_SEND_QUEUE, before.outq, &ts->send_queue)) {
			if (errno == EAGAIN)
				continue;
			goto err;
		}
		if (read_marks(fd, sk, &after) || getsockopt(fd, SOL_TCP, TCP_INFO, &ti, &len))
			goto err;
		if (!memcmp(&before, &after, sizeof(before)) && ti.tcpi_state == sk->state)
			break;
	}
	if (tries == 10) {
		pr_err("fd %d of task %d: the queues of TCP connection %s do not hold still",
		       src->fd, src->pid, conn);
		return -1;
	}
	ts->has_recv_queue = ts->has_send_queue = ts->has_unsent = true;
	if (ts->recv_queue.len + ts->send_queue.len > INLINE_MAX) {
		ts->has_recv_queue_size = ts->has_send_queue_size = true;
		move_out("tcp-recvq", sk->ino, &ts->recv_queue, &ts->recv_queue_size);
		move_out("tcp-sendq", sk->ino, &ts->send_queue, &ts->send_queue_size);
	}
	ts->snd_seq = before.snd_seq;
	ts->rcv_seq = before.rcv_seq;
	ts->unsent = before.unsent;
	len = sizeof(ti);
	if (getsockopt(fd, SOL_TCP, TCP_INFO, &ti, &len) || getint(fd, SOL_TCP, TCP_MAXSEG, &v))
		goto err;
	ts->mss = v;
	ts->opt_mask = ti.tcpi_options;
	if (ti.tcpi_options & TCPI_OPT_WSCALE) {
		ts->has_snd_wscale = ts->has_rcv_wscale = true;
		ts->snd_wscale = ti.tcpi_snd_wscale;
		ts->rcv_wscale = ti.tcpi_rcv_wscale;
	}
	if (ti.tcpi_options & TCPI_OPT_TIMESTAMPS) {
		if (getint(fd, SOL_TCP, TCP_TIMESTAMP, &v))
			goto err;
		ts->has_timestamp = true;
		ts->timestamp = v;
	}
	len = sizeof(win);
	if (getsockopt(fd, SOL_TCP, TCP_REPAIR_WINDOW, &win, &len))
		goto err;
	ts->has_snd_wl1 = ts->has_snd_wnd = ts->has_max_window = ts->has_rcv_wnd =
	    ts->has_rcv_wup = true;
	ts->snd_wl1 = win.snd_wl1;
	ts->snd_wnd = win.snd_wnd;
	ts->max_window = win.max_window;
	ts->rcv_wnd = win.rcv_wnd;
	ts->rcv_wup = win.rcv_wup;
	pr_debug("TCP connection %s of task %d: %d bytes received, %d to send (%d unsent)", conn,
		 src->pid, before.inq, before.outq, before.unsent);
	return 0;
err:
	pr_perror("fd %d of task %d: cannot read TCP connection %s in repair mode", src->fd,
		  src->pid, conn);
	return -1;
}

/* A connection still connecting: its SYN's sequence number, sent again by
 * the restore (nothing is queued yet). */
static int syn_sent(const struct fd_src *src, int fd, Stasis__InetSk *sk, const char *conn)
{
	Stasis__TcpStream *ts = xmalloc(sizeof(*ts));
	socklen_t len = sizeof(uint32_t);
	int v;

	stasis__tcp_stream__init(ts);
	sk->tcp = ts;
	if (select_queue(fd, TCP_SEND_QUEUE) ||
	    getsockopt(fd, SOL_TCP, TCP_QUEUE_SEQ, &ts->snd_seq, &len) ||
	    select_queue(fd, TCP_NO_QUEUE) || getint(fd, SOL_TCP, TCP_MAXSEG, &v)) {
		pr_perror("fd %d of task %d: cannot read connecting TCP socket %s", src->fd,
			  src->pid, conn);
		return -1;
	}
	ts->mss = v;
	pr_debug("TCP connection %s of task %d is connecting (SYN %u)", conn, src->pid,
		 ts->snd_seq - 1);
	return 0;
}

static int established(const struct fd_src *src, int fd, Stasis__InetSk *sk)
{
	char a[64], b[64], conn[140];
	struct repaired *r;

	snprintf(conn, sizeof(conn), "%s -> %s",
		 inet_show(sk->family, sk->src_addr.data, sk->src_port, a, sizeof(a)),
		 inet_show(sk->family, sk->dst_addr.data, sk->dst_port, b, sizeof(b)));
	if (opts.tcp_close) {
		pr_info("TCP connection %s of task %d is dumped closed (--tcp-close)", conn,
			src->pid);
		return 0;
	}
	if (!opts.tcp_established) {
		pr_err("fd %d of task %d: TCP connection %s (socket %u) is established; dump with "
		       "--tcp-established to carry it, or --tcp-close",
		       src->fd, src->pid, conn, sk->ino);
		return -1;
	}
	if (set_repair(fd, 1)) {
		pr_perror("fd %d of task %d: cannot put TCP connection %s in repair mode",
			  src->fd, src->pid, conn);
		return -1;
	}
	repaired = xrealloc(repaired, (nr_repaired + 1) * sizeof(*repaired));
	r = &repaired[nr_repaired++];
	r->fd = dup(fd);
	r->reuseaddr = carried_int(sk, SOL_SOCKET, SO_REUSEADDR, 0);
	if (r->fd < 0) {
		pr_perror("cannot keep a copy of fd %d of task %d", src->fd, src->pid);
		set_repair(fd, 0);
		nr_repaired--;
		return -1;
	}
	if (sk->state == TCP_SYN_SENT)
		return syn_sent(src, fd, sk, conn);
	return read_stream(src, fd, sk, conn);
}

static const char *tcp_state_name(int state)
{
	static const char *const names[] = {
	    [TCP_ESTABLISHED] = "ESTABLISHED", [TCP_SYN_SENT] = "SYN_SENT",
	    [TCP_SYN_RECV] = "SYN_RECV",       [TCP_FIN_WAIT1] = "FIN_WAIT1",
	    [TCP_FIN_WAIT2] = "FIN_WAIT2",     [TCP_TIME_WAIT] = "TIME_WAIT",
	    [TCP_CLOSE] = "CLOSE",	       [TCP_CLOSE_WAIT] = "CLOSE_WAIT",
	    [TCP_LAST_ACK] = "LAST_ACK",       [TCP_LISTEN] = "LISTEN",
	    [TCP_CLOSING] = "CLOSING",
	};

	return state > 0 && state < (int)ARRAY_SIZE(names) && names[state] ? names[state]
									    : "unknown";
}

/*
 * A connection that ended while it held data the task has not read: a
 * reset (or a time-out) leaves the bytes readable, then the error. The
 * bytes are peeked (nothing moves); the error is only seen pending
 * (POLLERR), since reading it would take it from the task: it comes back
 * as ECONNRESET. An error without data cannot be told apart (a refused
 * connect is ECONNREFUSED): refused.
 */
static int ended_with_reset(const struct fd_src *src, int fd, Stasis__InetSk *sk)
{
	struct pollfd pf = {fd, POLLIN, 0};
	char a[64];
	int inq = 0;
	ssize_t n;
	uint8_t *buf;

	if (poll(&pf, 1, 0) < 0 || ioctl(fd, SIOCINQ, &inq) || inq < 0) {
		pr_perror("fd %d of task %d: cannot read TCP socket %u", src->fd, src->pid,
			  sk->ino);
		return -1;
	}
	if (!inq) {
		if (!(pf.revents & POLLERR))
			return 0;
		pr_err("fd %d of task %d: TCP socket %u %s: its connection ended with an error "
		       "not reported yet and no data; stasis cannot restore such a socket",
		       src->fd, src->pid, sk->ino,
		       inet_show(sk->family, sk->src_addr.data, sk->src_port, a, sizeof(a)));
		return -1;
	}
	if ((unsigned)inq > QUEUE_MAX) {
		pr_err("fd %d of task %d: TCP socket %u holds %d bytes received, more than stasis "
		       "carries (256 MiB)",
		       src->fd, src->pid, sk->ino, inq);
		return -1;
	}
	buf = xmalloc((size_t)inq + 1);
	n = recv(fd, buf, (size_t)inq + 1, MSG_PEEK | MSG_DONTWAIT);
	if (n != inq) {
		/* SIOCINQ stops at an urgent mark; a closed socket cannot move */
		pr_err("fd %d of task %d: TCP socket %u %s: its connection ended with urgent data "
		       "not read yet; stasis cannot restore such a socket",
		       src->fd, src->pid, sk->ino,
		       inet_show(sk->family, sk->src_addr.data, sk->src_port, a, sizeof(a)));
		free(buf);
		return -1;
	}
	sk->has_reset = sk->reset = true;
	sk->has_reset_error_pending = true;
	sk->reset_error_pending = pf.revents & POLLERR;
	sk->has_reset_recv_queue = true;
	sk->reset_recv_queue.data = buf;
	sk->reset_recv_queue.len = (size_t)inq;
	if ((unsigned)inq > INLINE_MAX) {
		sk->has_reset_recv_queue_size = true;
		move_out("tcp-recvq", sk->ino, &sk->reset_recv_queue, &sk->reset_recv_queue_size);
	}
	pr_info("TCP socket %u of task %d: its connection ended (reset) with %d bytes not read%s",
		sk->ino, src->pid, inq, sk->reset_error_pending ? " and the error not reported" : "");
	return 0;
}

static int tcp(const struct fd_src *src, int fd, Stasis__InetSk *sk,
	       const struct inet_diag_sk *d)
{
	char a[64], b[64];

	switch (sk->state) {
	case TCP_CLOSE:
		/* bound sockets are in sock_diag's table: this one's port went
		 * with its connection */
		if (sk->has_src_port && sk->src_port && !d) {
			if (ended_with_reset(src, fd, sk))
				return -1;
			/* and it is shut down both ways, as every ended one */
			sk->has_port_released = sk->port_released = true;
			sk->has_shutdown = true;
			sk->shutdown = RCV_SHUTDOWN | SEND_SHUTDOWN;
		}
		return 0;
	case TCP_LISTEN:
		if (!d) {
			pr_err("fd %d of task %d: sock_diag does not know listening TCP socket %u",
			       src->fd, src->pid, sk->ino);
			return -1;
		}
		sk->has_backlog = true;
		sk->backlog = d->wqueue;
		if (d->rqueue && !opts.skip_in_flight) {
			pr_err("fd %d of task %d: TCP listener %s (socket %u) has %u connection(s) "
			       "not accepted yet; dump with --skip-in-flight to drop them",
			       src->fd, src->pid,
			       inet_show(sk->family, sk->src_addr.data, sk->src_port, a,
					 sizeof(a)),
			       sk->ino, d->rqueue);
			return -1;
		}
		if (d->rqueue)
			pr_warn("TCP listener %s of task %d: %u connection(s) not accepted yet are "
				"dropped (--skip-in-flight)",
				inet_show(sk->family, sk->src_addr.data, sk->src_port, a,
					  sizeof(a)),
				src->pid, d->rqueue);
		return 0;
	case TCP_SYN_SENT:
		/* getpeername says ENOTCONN until the handshake ends */
		if (!d || !sk->has_src_addr) {
			pr_err("fd %d of task %d: sock_diag does not know connecting TCP socket %u",
			       src->fd, src->pid, sk->ino);
			return -1;
		}
		sk->has_dst_addr = sk->has_dst_port = true;
		set_bytes(&sk->dst_addr, d->dst, sk->family == AF_INET6 ? 16 : 4);
		sk->dst_port = d->dport;
		return established(src, fd, sk);
	case TCP_ESTABLISHED:
	case TCP_FIN_WAIT1:
	case TCP_FIN_WAIT2:
	case TCP_CLOSE_WAIT:
	case TCP_LAST_ACK:
	case TCP_CLOSING:
		if (!sk->has_dst_addr || !sk->has_src_addr) {
			pr_err("fd %d of task %d: established TCP socket %u has no address",
			       src->fd, src->pid, sk->ino);
			return -1;
		}
		return established(src, fd, sk);
	default:
		pr_err("fd %d of task %d: TCP socket %u %s%s%s is in state %s, which stasis does "
		       "not support yet",
		       src->fd, src->pid, sk->ino,
		       sk->has_src_addr
			   ? inet_show(sk->family, sk->src_addr.data, sk->src_port, a, sizeof(a))
			   : "",
		       sk->has_dst_addr ? " -> " : "",
		       sk->has_dst_addr
			   ? inet_show(sk->family, sk->dst_addr.data, sk->dst_port, b, sizeof(b))
			   : "",
		       tcp_state_name(sk->state));
		return -1;
	}
}

/* A datagram being built (UDP_CORK, MSG_MORE) is in no queue stasis can
 * read: refused, as CRIU does. */
static int pending_datagram(const struct fd_src *src, int fd, const Stasis__InetSk *sk)
{
	int outq = 0;

	if (sk->protocol != IPPROTO_UDP && sk->protocol != IPPROTO_UDPLITE)
		return 0;
	if (ioctl(fd, SIOCOUTQ, &outq) || !outq)
		return 0;
	pr_err("fd %d of task %d: %s socket %u holds %d bytes of a datagram not sent yet "
	       "(UDP_CORK or MSG_MORE), which stasis cannot carry",
	       src->fd, src->pid, proto_name(sk->type, sk->protocol), sk->ino, outq);
	return -1;
}

static int dump(const struct fd_src *src, Stasis__FileEntry *fe)
{
	Stasis__InetSk *sk = xmalloc(sizeof(*sk));
	const struct inet_diag_sk *d;
	int fd, v, ret = -1;

	stasis__inet_sk__init(sk);
	fe->type = STASIS__FD_TYPE__INETSK;
	fe->inetsk = sk;
	sk->ino = src->st.st_ino;
	fd = fd_src_dup(src);
	if (fd < 0)
		return -1;
	if (getint(fd, SOL_SOCKET, SO_DOMAIN, &v) || (sk->family = v, 0) ||
	    getint(fd, SOL_SOCKET, SO_TYPE, &v) || (sk->type = v, 0) ||
	    getint(fd, SOL_SOCKET, SO_PROTOCOL, &v) || (sk->protocol = v, 0)) {
		pr_perror("fd %d of task %d: cannot read the kind of socket %u", src->fd, src->pid,
			  sk->ino);
		goto out;
	}
	if (!supported(sk->family, sk->type, sk->protocol)) {
		pr_err("fd %d of task %d: inet socket %u of type %u, protocol %u is not supported",
		       src->fd, src->pid, sk->ino, sk->type, sk->protocol);
		goto out;
	}
	if (names(fd, sk)) {
		pr_perror("fd %d of task %d: cannot read the names of socket %u", src->fd,
			  src->pid, sk->ino);
		goto out;
	}
	if (tcp_stream(sk)) {
		struct tcp_info ti;
		socklen_t len = sizeof(ti);

		if (getsockopt(fd, SOL_TCP, TCP_INFO, &ti, &len)) {
			pr_perror("fd %d of task %d: cannot read TCP_INFO", src->fd, src->pid);
			goto out;
		}
		sk->state = ti.tcpi_state;
	} else {
		sk->state = sk->has_dst_addr ? TCP_ESTABLISHED : TCP_CLOSE;
	}
	d = load() ? sockdiag_inet_find(&diag, sk->ino) : NULL;
	if (diag_state < 0)
		goto out;
	if (d && d->shutdown) {
		sk->has_shutdown = true;
		sk->shutdown = d->shutdown;
	}
	/* options before repair mode, which changes SO_REUSEADDR */
	if (options(src, fd, sk))
		goto out;
	if (tcp_stream(sk))
		ret = tcp(src, fd, sk, d);
	else
		ret = pending_datagram(src, fd, sk);
	if (!ret && d && sk->type == SOCK_DGRAM && d->rqueue)
		pr_warn("%s socket %u of task %d: the %u bytes of datagrams queued on it are not "
			"carried (as datagrams lost)",
			proto_name(sk->type, sk->protocol), sk->ino, src->pid, d->rqueue);
	pr_debug("%s socket %u of task %d: family %u state %u", proto_name(sk->type, sk->protocol),
		 sk->ino, src->pid, sk->family, sk->state);
out:
	close(fd);
	return ret;
}

const struct fd_dump_ops inetsk_dump_ops = {"inet socket", match, dump};

void inet_resume(void)
{
	for (size_t i = 0; i < nr_repaired; i++) {
		struct repaired *r = &repaired[i];

		if (set_repair(r->fd, 0))
			pr_perror("cannot take a TCP connection out of repair mode");
		else if (r->reuseaddr &&
			 setsockopt(r->fd, SOL_SOCKET, SO_REUSEADDR, &r->reuseaddr, sizeof(int)))
			pr_perror("cannot set SO_REUSEADDR back on a TCP connection");
		close(r->fd);
	}
	nr_repaired = 0;
}

void inet_release(void)
{
	/* still in repair mode: the last close sends nothing to the peer */
	for (size_t i = 0; i < nr_repaired; i++)
		close(repaired[i].fd);
	nr_repaired = 0;
}

/* ---- the network lock ---- */

static bool locked;

/* The network namespaces locked: a lock in each that has connections of
 * the tree (ours is nss[0]: -1). */
static int locked_nss[64];
static size_t nr_locked_nss;

/* The TCP connections of task pid, as sock_diag lists them. */
static void lock_task_sockets(pid_t pid, struct netlock_conn **conns, size_t *nr)
{
	char path[64], link[64], fdpath[320];
	struct dirent *de;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	dir = opendir(path);
	while (dir && (de = readdir(dir))) {
		const struct inet_diag_sk *d;
		ssize_t n;

		snprintf(fdpath, sizeof(fdpath), "%s/%s", path, de->d_name);
		n = readlink(fdpath, link, sizeof(link) - 1);
		if (n <= 8)
			continue;
		link[n] = 0;
		if (strncmp(link, "socket:[", 8))
			continue;
		d = sockdiag_inet_find(&diag, strtoul(link + 8, NULL, 10));
		if (!d || d->protocol != IPPROTO_TCP || d->state == TCP_LISTEN ||
		    d->state == TCP_CLOSE)
			continue;
		*conns = xrealloc(*conns, (*nr + 1) * sizeof(**conns));
		(*conns)[*nr] = (struct netlock_conn){
		    .family = d->family, .sport = d->sport, .dport = d->dport};
		memcpy((*conns)[*nr].src, d->src, 16);
		memcpy((*conns)[*nr].dst, d->dst, 16);
		(*nr)++;
	}
	if (dir)
		closedir(dir);
}

/* The network namespace of task pid: an open descriptor, or -1 for ours
 * (or one that cannot be read: its sockets are then not found either). */
static int task_netns(pid_t pid, struct stat *st)
{
	char path[64];
	struct stat own;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, st) || stat("/proc/self/ns/net", &own) ||
	    (st->st_ino == own.st_ino && st->st_dev == own.st_dev)) {
		if (fd >= 0)
			close(fd);
		st->st_ino = 0;
		return -1;
	}
	return fd;
}

int inet_lock(pid_t root)
{
	const struct tree *t = collect_tree();
	struct stat *ns_of;
	int *fds, ret = 0;

	if (!opts.tcp_established || opts.network_lock == NETLOCK_SKIP)
		return 0;
	/* sock_diag must see the sockets of the tree's namespaces */
	ns_of = xzalloc(t->nr * sizeof(*ns_of));
	fds = xmalloc(t->nr * sizeof(*fds));
	for (int i = 0; i < t->nr; i++) {
		fds[i] = t->tasks[i].zombie ? -1 : task_netns(t->tasks[i].pid, &ns_of[i]);
		if (fds[i] >= 0 && sockdiag_add_netns(fds[i]))
			ret = -1;
	}
	if (ret || !load())
		ret = -1;
	/* one lock for each namespace, ours first */
	for (int i = -1; !ret && i < t->nr; i++) {
		struct netlock_conn *conns = NULL;
		size_t nr = 0;
		bool done = false;

		if (i >= 0 && fds[i] < 0)
			continue;
		for (int j = 0; i >= 0 && j < i; j++)
			done |= ns_of[j].st_ino == ns_of[i].st_ino &&
				ns_of[j].st_dev == ns_of[i].st_dev;
		if (done)
			continue;
		for (int j = 0; j < t->nr; j++)
			if (!t->tasks[j].zombie && ns_of[j].st_ino == (i < 0 ? 0 : ns_of[i].st_ino))
				lock_task_sockets(t->tasks[j].pid, &conns, &nr);
		netlock_set_netns(i < 0 ? -1 : fds[i]);
		ret = netlock_lock(opts.network_lock, root, conns, nr);
		if (!ret && nr) {
			locked = true;
			locked_nss[nr_locked_nss++] = i < 0 ? -1 : dup(fds[i]);
			pr_info("network lock (%s): %zu TCP connection(s) of tree %d%s",
				netlock_name(opts.network_lock), nr, root,
				i < 0 ? "" : " in its network namespace");
		}
		free(conns);
		if (nr_locked_nss == ARRAY_SIZE(locked_nss))
			break;
	}
	netlock_set_netns(-1);
	for (int i = 0; i < t->nr; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	free(ns_of);
	if (ret)
		inet_unlock(root);
	/* the table is read again for the dump, after the lock */
	sockdiag_inet_free(&diag);
	diag_state = 0;
	return ret;
}

bool inet_locked(void)
{
	return locked;
}

void inet_unlock(pid_t root)
{
	if (!locked)
		return;
	locked = false;
	for (size_t i = 0; i < nr_locked_nss; i++) {
		netlock_set_netns(locked_nss[i]);
		if (netlock_unlock(opts.network_lock, root))
			pr_err("the network lock of tree %d could not be removed", root);
		if (locked_nss[i] >= 0)
			close(locked_nss[i]);
	}
	netlock_set_netns(-1);
	nr_locked_nss = 0;
}
