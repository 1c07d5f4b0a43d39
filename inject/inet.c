// SPDX-License-Identifier: GPL-2.0
/*
 * Inet sockets on restore, made in stasis-inject and inherited by the
 * tasks. Options go on before bind (SO_REUSEADDR forced on meanwhile, so
 * that the tree's sockets can share their ports in any order), then bind,
 * listen or connect. An established TCP connection is made in repair mode
 * (TCP_REPAIR): sequence numbers, connect without a handshake, the
 * negotiated options, its queues (what was sent and not acknowledged goes
 * in as sent) and its window. It leaves repair mode only once every socket
 * of the tree exists (inet_finish), so that no segment reaches a peer of
 * the tree that is not there yet; the data it had not sent is sent then.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <linux/sockios.h>

#include "files.h"
#include "stasis/log.h"
#include "stasis/netlock.h"
#include "stasis/skfilter.h"
#include "stasis/util.h"

#ifndef SO_BUF_LOCK
#define SO_BUF_LOCK 72
#endif
#ifndef IPV6_FREEBIND
#define IPV6_FREEBIND 78
#endif
#define RCV_SHUTDOWN  1
#define SEND_SHUTDOWN 2
/* the receive queue goes in as linear buffers: keep them small */
#define RECV_PIECE (64u << 10)

#ifndef ICMP6_FILTER
#define ICMP6_FILTER 1
#endif

/* A connection waiting in repair mode for inet_finish. */
struct pending {
	int fd; /* our copy */
	int reuseaddr;
	int shutdown;
	/* half-closed: our FIN goes out again once the data is in (the peer
	 * acknowledges it again if it had it); the peer's FIN is fed to the
	 * socket as a packet from the peer, at the end of what it received */
	bool fin_sent, fin_received;
	int family;
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
	uint32_t fin_seq, fin_ack;
	uint16_t fin_window;
	uint8_t *unsent; /* the end of the send queue, never sent */
	size_t nr_unsent;
	/* an urgent mark: what was received from the urgent byte on is fed
	 * as the peer's segments, the first flagged URG at that byte */
	uint8_t *urg_tail;
	size_t nr_urg_tail;
	uint32_t urg_seq;
	bool urg_read;
	/* a connection that ended with a reset: fed the peer's RST at
	 * fin_seq; its error left pending, or taken as the task had */
	bool reset, reset_error_pending;
	char conn[140];
};

static struct pending *pendings;
static size_t nr_pendings;

/* A TCP connection or listener; a raw socket of protocol TCP is not one. */
static bool tcp_stream(const Stasis__InetSk *sk)
{
	return sk->type == SOCK_STREAM && sk->protocol == IPPROTO_TCP;
}

static const char *proto_name(const Stasis__InetSk *sk)
{
	switch (sk->protocol) {
	case IPPROTO_TCP:
		return "TCP";
	case IPPROTO_UDP:
		return "UDP";
	case IPPROTO_UDPLITE:
		return "UDP-lite";
	default:
		return sk->type == SOCK_RAW ? "raw" : "ICMP";
	}
}

static socklen_t make_addr(const Stasis__InetSk *sk, const ProtobufCBinaryData *addr,
			   uint32_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (sk->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (void *)ss;

		if (addr->len != 16)
			return 0;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		memcpy(&s6->sin6_addr, addr->data, 16);
		return sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (void *)ss;

		if (addr->len != 4)
			return 0;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		memcpy(&s4->sin_addr, addr->data, 4);
		return sizeof(*s4);
	}
}

static const char *show(const Stasis__InetSk *sk, const ProtobufCBinaryData *addr,
			uint32_t port, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN] = "?";

	if (addr->len == (sk->family == AF_INET6 ? 16u : 4u))
		inet_ntop(sk->family, addr->data, a, sizeof(a));
	snprintf(buf, size, sk->family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, port);
	return buf;
}

static int setint(int fd, int level, int name, int val)
{
	return setsockopt(fd, level, name, &val, sizeof(val));
}

static int carried_int(const Stasis__SkOpts *o, int level, int name, int dflt)
{
	for (size_t i = 0; o && i < o->n_ints; i++)
		if ((int)o->ints[i]->level == level && (int)o->ints[i]->name == name)
			return o->ints[i]->value;
	return dflt;
}

static int set_timeout(int fd, int name, uint64_t us)
{
	struct timeval tv = {us / 1000000, us % 1000000};

	return setsockopt(fd, SOL_SOCKET, name, &tv, sizeof(tv));
}

/* Every option but the final SO_REUSEADDR, which waits for the bind. */
static int apply_options(int fd, const Stasis__InetSk *sk)
{
	const Stasis__SkOpts *o = sk->opts;

	if (!o)
		return 0;
	for (size_t i = 0; i < o->n_ints; i++) {
		const Stasis__SkIntOpt *io = o->ints[i];

		if (io->level == SOL_SOCKET && (io->name == SO_REUSEADDR || io->name == SO_BUF_LOCK))
			continue;
		if (setint(fd, io->level, io->name, io->value)) {
			pr_perror("%s socket %u: cannot set option %u:%u to %d", proto_name(sk),
				  sk->ino, io->level, io->name, io->value);
			return -1;
		}
	}
	/* getsockopt reads twice what was set; FORCE passes the sysctl limits */
	if (o->has_sndbuf && setint(fd, SOL_SOCKET, SO_SNDBUFFORCE, o->sndbuf / 2)) {
		pr_perror("%s socket %u: cannot set SO_SNDBUF", proto_name(sk), sk->ino);
		return -1;
	}
	if (o->has_rcvbuf && setint(fd, SOL_SOCKET, SO_RCVBUFFORCE, o->rcvbuf / 2)) {
		pr_perror("%s socket %u: cannot set SO_RCVBUF", proto_name(sk), sk->ino);
		return -1;
	}
	/* after the buffers, which lock them */
	if (carried_int(o, SOL_SOCKET, SO_BUF_LOCK, -1) >= 0 &&
	    setint(fd, SOL_SOCKET, SO_BUF_LOCK, carried_int(o, SOL_SOCKET, SO_BUF_LOCK, 0))) {
		pr_perror("%s socket %u: cannot set SO_BUF_LOCK", proto_name(sk), sk->ino);
		return -1;
	}
	if ((o->has_rcvtimeo_us && set_timeout(fd, SO_RCVTIMEO, o->rcvtimeo_us)) ||
	    (o->has_sndtimeo_us && set_timeout(fd, SO_SNDTIMEO, o->sndtimeo_us))) {
		pr_perror("%s socket %u: cannot set its timeouts", proto_name(sk), sk->ino);
		return -1;
	}
	if (o->has_linger_on || o->has_linger_s) {
		struct linger lg = {o->linger_on, o->linger_s};

		if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg))) {
			pr_perror("%s socket %u: cannot set SO_LINGER", proto_name(sk), sk->ino);
			return -1;
		}
	}
	if (o->bindtodevice && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, o->bindtodevice,
					  strlen(o->bindtodevice) + 1)) {
		pr_perror("%s socket %u: cannot bind it to device %s", proto_name(sk), sk->ino,
			  o->bindtodevice);
		return -1;
	}
	if (o->has_icmp6_filter &&
	    (o->icmp6_filter.len != 32 ||
	     setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, o->icmp6_filter.data, 32))) {
		pr_perror("%s socket %u: cannot set its ICMPV6_FILTER", proto_name(sk), sk->ino);
		return -1;
	}
	if (o->has_filter) {
		if (o->filter.len % sizeof(struct sock_filter) ||
		    skfilter_set(fd, (const struct sock_filter *)o->filter.data,
				 o->filter.len / sizeof(struct sock_filter), o->filter_locked)) {
			pr_perror("%s socket %u: cannot attach its socket filter", proto_name(sk),
				  sk->ino);
			return -1;
		}
	}
	return 0;
}

static bool connected(uint32_t state)
{
	return state == TCP_SYN_SENT || state == TCP_ESTABLISHED || state == TCP_FIN_WAIT1 || state == TCP_FIN_WAIT2 ||
	       state == TCP_CLOSE_WAIT || state == TCP_LAST_ACK || state == TCP_CLOSING;
}

static int select_queue(int fd, int queue)
{
	return setsockopt(fd, SOL_TCP, TCP_REPAIR_QUEUE, &queue, sizeof(queue));
}

static int set_seq(int fd, int queue, uint32_t seq)
{
	return select_queue(fd, queue) ||
	       setsockopt(fd, SOL_TCP, TCP_QUEUE_SEQ, &seq, sizeof(seq));
}

static int fill_queue(int fd, int queue, const uint8_t *data, size_t len, size_t piece)
{
	if (select_queue(fd, queue))
		return -1;
	while (len) {
		ssize_t n = send(fd, data, len < piece ? len : piece, 0);

		if (n <= 0) {
			/* a linear buffer that large may not be had: smaller */
			if (n < 0 && errno == ENOMEM && piece > 1024) {
				piece /= 2;
				continue;
			}
			return -1;
		}
		data += n;
		len -= n;
	}
	return select_queue(fd, TCP_NO_QUEUE);
}

static int repair_queues(int fd, const Stasis__InetSk *sk, const Stasis__TcpStream *ts,
			 const char *conn);

/* A queue kept in image (tcp-recvq, tcp-sendq) by pieces; NULL logged. */
static uint8_t *load_queue(const char *image, uint32_t ino, uint32_t size, const char *conn)
{
	uint8_t *buf = xmalloc(size + 1);
	unsigned n = records_count(image);
	uint64_t got = 0;

	for (unsigned i = 0; i < n; i++) {
		Stasis__DataChunk *c = records_get(image, i, &stasis__data_chunk__descriptor);

		if (!c)
			continue;
		if (c->id == ino) {
			if (c->offset > size || c->data.len > size - c->offset) {
				pr_err("TCP connection %s: a piece of %s lies outside its queue",
				       conn, image);
				protobuf_c_message_free_unpacked(&c->base, NULL);
				free(buf);
				return NULL;
			}
			memcpy(buf + c->offset, c->data.data, c->data.len);
			got += c->data.len;
		}
		protobuf_c_message_free_unpacked(&c->base, NULL);
	}
	if (got != size) {
		pr_err("TCP connection %s: %s holds %llu of its %u bytes", conn, image,
		       (unsigned long long)got, size);
		free(buf);
		return NULL;
	}
	return buf;
}

static int repair_stream(int fd, const Stasis__InetSk *sk, const char *conn)
{
	Stasis__TcpStream copy = *sk->tcp, *ts = &copy;
	int ret;

	/* a big queue comes from its own image */
	if (ts->has_recv_queue_size) {
		ts->recv_queue.data = load_queue("tcp-recvq", sk->ino, ts->recv_queue_size, conn);
		ts->recv_queue.len = ts->recv_queue_size;
		if (!ts->recv_queue.data)
			return -1;
	}
	if (ts->has_send_queue_size) {
		ts->send_queue.data = load_queue("tcp-sendq", sk->ino, ts->send_queue_size, conn);
		ts->send_queue.len = ts->send_queue_size;
		if (!ts->send_queue.data) {
			if (ts->has_recv_queue_size)
				free(ts->recv_queue.data);
			return -1;
		}
	}
	ret = repair_queues(fd, sk, ts, conn);
	if (ts->has_recv_queue_size)
		free(ts->recv_queue.data);
	if (ts->has_send_queue_size)
		free(ts->send_queue.data);
	return ret;
}

/*
 * connect in repair mode looks up a route from the connection's own
 * address, which fails while that address is not (yet) local: a connection
 * migrated to a host that takes the address over once the sockets exist
 * (docs/inet.md). IP_TRANSPARENT lets the lookup use any source address; it
 * goes back to its dumped value at once.
 */
static int connect_repaired(int fd, const Stasis__InetSk *sk, const struct sockaddr_storage *dst,
			    socklen_t dlen)
{
	bool v6 = sk->family == AF_INET6;
	int level = v6 ? SOL_IPV6 : SOL_IP, name = v6 ? IPV6_TRANSPARENT : IP_TRANSPARENT;
	int dumped = carried_int(sk->opts, level, name, 0), ret, err;

	if (!connect(fd, (const struct sockaddr *)dst, dlen))
		return 0;
	if (dumped || (errno != ENETUNREACH && errno != EADDRNOTAVAIL && errno != EINVAL))
		return -1;
	if (setint(fd, level, name, 1))
		return -1;
	ret = connect(fd, (const struct sockaddr *)dst, dlen);
	err = errno;
	setint(fd, level, name, 0);
	errno = err;
	if (!ret)
		pr_info("%s socket %u: connected in repair mode from an address not local (yet)",
			proto_name(sk), sk->ino);
	return ret;
}

/* A new pending connection, with our copy of fd (counted by the caller
 * once filled in: nr_pendings++); NULL logged. */
static struct pending *pending_add(int fd, const char *conn)
{
	struct pending *p;

	pendings = xrealloc(pendings, (nr_pendings + 1) * sizeof(*pendings));
	p = &pendings[nr_pendings];
	memset(p, 0, sizeof(*p));
	p->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (p->fd < 0) {
		pr_perror("cannot keep a copy of TCP connection %s", conn);
		return NULL;
	}
	return p;
}

static int repair_queues(int fd, const Stasis__InetSk *sk, const Stasis__TcpStream *ts,
			 const char *conn)
{
	struct tcp_repair_opt ropts[4];
	struct sockaddr_storage dst;
	socklen_t dlen = make_addr(sk, &sk->dst_addr, sk->dst_port, &dst);
	size_t nr = 0, sent, filled;
	struct pending *p;

	if (ts->unsent > ts->send_queue.len || !dlen) {
		pr_err("TCP connection %s: malformed record", conn);
		return -1;
	}
	sent = ts->send_queue.len - ts->unsent;
	/* before an urgent mark only: the rest comes as the peer's segments */
	filled = ts->has_urg_offset ? ts->urg_offset : ts->recv_queue.len;
	if (filled > ts->recv_queue.len) {
		pr_err("TCP connection %s: malformed record (urgent mark)", conn);
		return -1;
	}
	/* the queues end at the dumped sequence numbers */
	if (set_seq(fd, TCP_RECV_QUEUE, ts->rcv_seq - ts->recv_queue.len) ||
	    set_seq(fd, TCP_SEND_QUEUE, ts->snd_seq - ts->send_queue.len) ||
	    select_queue(fd, TCP_NO_QUEUE)) {
		pr_perror("TCP connection %s: cannot set its sequence numbers", conn);
		return -1;
	}
	if (connect_repaired(fd, sk, &dst, dlen)) {
		pr_perror("TCP connection %s: cannot connect it in repair mode", conn);
		return -1;
	}
	if (ts->opt_mask & TCPI_OPT_SACK)
		ropts[nr++] = (struct tcp_repair_opt){TCPOPT_SACK_PERMITTED, 0};
	if (ts->opt_mask & TCPI_OPT_WSCALE)
		ropts[nr++] =
		    (struct tcp_repair_opt){TCPOPT_WINDOW, ts->snd_wscale | ts->rcv_wscale << 16};
	if (ts->opt_mask & TCPI_OPT_TIMESTAMPS)
		ropts[nr++] = (struct tcp_repair_opt){TCPOPT_TIMESTAMP, 0};
	ropts[nr++] = (struct tcp_repair_opt){TCPOPT_MAXSEG, ts->mss};
	if (setsockopt(fd, SOL_TCP, TCP_REPAIR_OPTIONS, ropts, nr * sizeof(ropts[0]))) {
		pr_perror("TCP connection %s: cannot set its options (MSS, window scale, SACK, "
			  "timestamps)",
			  conn);
		return -1;
	}
	if (ts->has_timestamp &&
	    setsockopt(fd, SOL_TCP, TCP_TIMESTAMP, &ts->timestamp, sizeof(ts->timestamp))) {
		pr_perror("TCP connection %s: cannot set its timestamp", conn);
		return -1;
	}
	if (fill_queue(fd, TCP_RECV_QUEUE, ts->recv_queue.data, filled, RECV_PIECE) ||
	    fill_queue(fd, TCP_SEND_QUEUE, ts->send_queue.data, sent, 1u << 20)) {
		pr_perror("TCP connection %s: cannot put its queued data back", conn);
		return -1;
	}
	if (ts->has_snd_wl1) {
		struct tcp_repair_window win = {ts->snd_wl1, ts->snd_wnd, ts->max_window,
						ts->rcv_wnd, ts->rcv_wup};

		/* measured with the peer's FIN and the data after an urgent
		 * mark, which are not in yet: the same right edge */
		uint32_t rcv_nxt = ts->rcv_seq - ts->recv_queue.len + filled;

		if ((int32_t)(win.rcv_wup - rcv_nxt) > 0) {
			win.rcv_wnd += win.rcv_wup - rcv_nxt;
			win.rcv_wup = rcv_nxt;
		}
		if (setsockopt(fd, SOL_TCP, TCP_REPAIR_WINDOW, &win, sizeof(win))) {
			pr_perror("TCP connection %s: cannot set its window", conn);
			return -1;
		}
	}
	p = pending_add(fd, conn);
	if (!p)
		return -1;
	p->reuseaddr = carried_int(sk->opts, SOL_SOCKET, SO_REUSEADDR, 0);
	p->shutdown = sk->has_shutdown ? sk->shutdown : 0;
	p->nr_unsent = ts->unsent;
	p->fin_sent = sk->state == TCP_FIN_WAIT1 || sk->state == TCP_FIN_WAIT2 ||
		      sk->state == TCP_CLOSING || sk->state == TCP_LAST_ACK;
	p->fin_received = sk->state == TCP_CLOSE_WAIT || sk->state == TCP_CLOSING ||
			  sk->state == TCP_LAST_ACK;
	p->family = sk->family;
	memcpy(p->src, sk->src_addr.data, sk->src_addr.len);
	memcpy(p->dst, sk->dst_addr.data, sk->dst_addr.len);
	p->sport = sk->src_port;
	p->dport = sk->dst_port;
	p->fin_seq = ts->rcv_seq;
	p->fin_ack = ts->snd_seq - ts->send_queue.len;
	p->fin_window = ts->snd_wnd >> (ts->has_snd_wscale ? ts->snd_wscale : 0);
	if (ts->unsent) {
		p->unsent = xmalloc(ts->unsent);
		memcpy(p->unsent, ts->send_queue.data + sent, ts->unsent);
	}
	if (ts->has_urg_offset) {
		p->nr_urg_tail = ts->recv_queue.len - filled;
		p->urg_tail = xmalloc(p->nr_urg_tail + 1);
		memcpy(p->urg_tail, ts->recv_queue.data + filled, p->nr_urg_tail);
		p->urg_seq = ts->rcv_seq - ts->recv_queue.len + filled;
		p->urg_read = ts->has_urg_read && ts->urg_read;
	}
	snprintf(p->conn, sizeof(p->conn), "%s", conn);
	nr_pendings++;
	return 0;
}

/*
 * Binds sk to its name. An address that is not (or no longer) local was
 * bound with IP_FREEBIND, maybe since turned off: it is on meanwhile. The
 * name of a connection that ended does not hold its port any more; it is
 * bound in repair mode, which takes the port whoever holds it.
 */
static int bind_name(int fd, const Stasis__InetSk *sk, bool repair)
{
	bool v6 = sk->family == AF_INET6;
	int fb_level = v6 ? SOL_IPV6 : SOL_IP, fb_name = v6 ? IPV6_FREEBIND : IP_FREEBIND;
	bool force = !repair && tcp_stream(sk) && sk->port_released;
	struct sockaddr_storage ss;
	socklen_t len = make_addr(sk, &sk->src_addr, sk->src_port, &ss);
	char a[64];
	int r;

	if (!len) {
		pr_err("%s socket %u: malformed address", proto_name(sk), sk->ino);
		return -1;
	}
	if (force && setint(fd, SOL_TCP, TCP_REPAIR, 1)) {
		pr_perror("%s socket %u: cannot use repair mode", proto_name(sk), sk->ino);
		return -1;
	}
	r = bind(fd, (struct sockaddr *)&ss, len);
	if (r && errno == EADDRNOTAVAIL && !carried_int(sk->opts, fb_level, fb_name, 0)) {
		setint(fd, fb_level, fb_name, 1);
		r = bind(fd, (struct sockaddr *)&ss, len);
		setint(fd, fb_level, fb_name, 0);
	}
	if (r)
		pr_perror("%s socket %u: cannot bind it to %s", proto_name(sk), sk->ino,
			  show(sk, &sk->src_addr, sk->src_port, a, sizeof(a)));
	if (force && setint(fd, SOL_TCP, TCP_REPAIR, 0)) {
		pr_perror("%s socket %u: cannot leave repair mode", proto_name(sk), sk->ino);
		return -1;
	}
	return r ? -1 : 0;
}

static int shut_how(uint32_t mask)
{
	if ((mask & RCV_SHUTDOWN) && (mask & SEND_SHUTDOWN))
		return SHUT_RDWR;
	return mask & RCV_SHUTDOWN ? SHUT_RD : SHUT_WR;
}

/*
 * A connection that was connecting: its SYN goes out again with the same
 * sequence number (after the network unlock, the kernel's retransmission),
 * from a non-blocking connect; a task blocked in connect() waits again.
 */
static int connect_again(int fd, const Stasis__InetSk *sk, const char *conn)
{
	struct sockaddr_storage dst;
	socklen_t dlen = make_addr(sk, &sk->dst_addr, sk->dst_port, &dst);
	int fl = fcntl(fd, F_GETFL);

	if (!dlen || !sk->tcp) {
		pr_err("TCP connection %s: malformed record", conn);
		return -1;
	}
	if (set_seq(fd, TCP_SEND_QUEUE, sk->tcp->snd_seq - 1) || select_queue(fd, TCP_NO_QUEUE) ||
	    setint(fd, SOL_TCP, TCP_REPAIR, 0)) {
		pr_perror("TCP connection %s: cannot set its sequence number", conn);
		return -1;
	}
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	if (connect(fd, (struct sockaddr *)&dst, dlen) && errno != EINPROGRESS) {
		pr_perror("TCP connection %s: cannot connect it again", conn);
		return -1;
	}
	if (setint(fd, SOL_SOCKET, SO_REUSEADDR, carried_int(sk->opts, SOL_SOCKET, SO_REUSEADDR, 0))) {
		pr_perror("TCP connection %s: cannot set SO_REUSEADDR", conn);
		return -1;
	}
	return 0;
}

/* O_NONBLOCK as the description had it (socket() makes it blocking). */
static int set_flags(int fd, const Stasis__FileEntry *fe)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, (fl & ~O_NONBLOCK) | (fe->flags & O_NONBLOCK))) {
		pr_perror("inet socket %u: cannot set its flags", fe->inetsk->ino);
		return -1;
	}
	return 0;
}

/* where the queues of a reset connection start (the peer is gone: any) */
#define RESET_SEQ 1000u

/*
 * A connection that ended with a reset before the task read what it had
 * received: connected in repair mode to a stand-in peer on the loopback
 * (the old peer is forgotten: getpeername says ENOTCONN either way), the
 * bytes put in its receive queue, and fed the peer's reset by
 * inet_finish: the bytes are read, then the error comes, as the first time.
 */
static int reset_open(int fd, const Stasis__InetSk *sk)
{
	static const uint8_t lo4[4] = {127, 0, 0, 1}, lo6[16] = {[15] = 1};
	static const uint8_t mapped_lo[16] = {[10] = 0xff, [11] = 0xff, [12] = 127, [15] = 1};
	static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
	bool v6 = sk->family == AF_INET6;
	bool v4_mapped = v6 && sk->src_addr.len == 16 && !memcmp(sk->src_addr.data, mapped, 12);
	ProtobufCBinaryData lo = {v6 ? 16 : 4, (uint8_t *)(!v6 ? lo4 : v4_mapped ? mapped_lo : lo6)};
	const ProtobufCBinaryData *q = &sk->reset_recv_queue;
	uint8_t *data = q->data;
	size_t len = q->len;
	struct sockaddr_storage dst;
	char conn[140], a[64];
	struct pending *p;
	uint32_t port;
	int ret = -1;

	snprintf(conn, sizeof(conn), "%s (ended with a reset)",
		 show(sk, &sk->src_addr, sk->src_port, a, sizeof(a)));
	if (!sk->has_src_addr || sk->src_addr.len != lo.len) {
		pr_err("TCP socket %u: malformed record (a reset connection without its address)",
		       sk->ino);
		return -1;
	}
	if (sk->has_reset_recv_queue_size) {
		data = load_queue("tcp-recvq", sk->ino, sk->reset_recv_queue_size, conn);
		len = sk->reset_recv_queue_size;
		if (!data)
			return -1;
	}
	if (setint(fd, SOL_TCP, TCP_REPAIR, 1)) {
		pr_perror("TCP connection %s: cannot use repair mode", conn);
		goto out;
	}
	if (apply_options(fd, sk) || bind_name(fd, sk, true))
		goto out;
	if (set_seq(fd, TCP_RECV_QUEUE, RESET_SEQ) || set_seq(fd, TCP_SEND_QUEUE, RESET_SEQ) ||
	    select_queue(fd, TCP_NO_QUEUE)) {
		pr_perror("TCP connection %s: cannot set its sequence numbers", conn);
		goto out;
	}
	/* a stand-in peer's port that no connection of this address uses */
	for (port = 1; port < 1024; port++) {
		socklen_t dlen = make_addr(sk, &lo, port, &dst);

		if (!connect_repaired(fd, sk, &dst, dlen))
			break;
		if (errno != EADDRNOTAVAIL) {
			port = 1024;
			break;
		}
	}
	if (port == 1024) {
		pr_perror("TCP connection %s: cannot connect it in repair mode", conn);
		goto out;
	}
	if (fill_queue(fd, TCP_RECV_QUEUE, data, len, RECV_PIECE)) {
		pr_perror("TCP connection %s: cannot put its received data back", conn);
		goto out;
	}
	p = pending_add(fd, conn);
	if (!p)
		goto out;
	p->reuseaddr = carried_int(sk->opts, SOL_SOCKET, SO_REUSEADDR, 0);
	p->family = sk->family;
	memcpy(p->src, sk->src_addr.data, lo.len);
	memcpy(p->dst, lo.data, lo.len);
	p->sport = sk->src_port;
	p->dport = port;
	p->fin_seq = RESET_SEQ + len;
	p->fin_ack = RESET_SEQ;
	p->reset = true;
	p->reset_error_pending = sk->has_reset_error_pending && sk->reset_error_pending;
	snprintf(p->conn, sizeof(p->conn), "%s", conn);
	nr_pendings++;
	ret = 0;
out:
	if (data != q->data)
		free(data);
	return ret;
}

static int inet_open(Stasis__FileEntry *fe)
{
	const Stasis__InetSk *sk = fe->inetsk;
	struct sockaddr_storage ss;
	char a[64], b[64], conn[140] = "";
	bool repair, closed, listener;
	socklen_t len;
	int fd;

	if (!sk) {
		pr_err("file %u: an inet socket without its record", fe->id);
		return -1;
	}
	closed = tcp_stream(sk) && connected(sk->state) && (!sk->tcp || opts.tcp_close);
	repair = tcp_stream(sk) && connected(sk->state) && !closed;
	listener = tcp_stream(sk) && sk->state == TCP_LISTEN;
	if (sk->has_src_addr && sk->has_dst_addr)
		snprintf(conn, sizeof(conn), "%s -> %s",
			 show(sk, &sk->src_addr, sk->src_port, a, sizeof(a)),
			 show(sk, &sk->dst_addr, sk->dst_port, b, sizeof(b)));
	fd = socket(sk->family, sk->type | SOCK_CLOEXEC, sk->protocol);
	if (fd < 0) {
		pr_perror("cannot create %s socket %u", proto_name(sk), sk->ino);
		return -1;
	}
	if (tcp_stream(sk) && sk->state == TCP_CLOSE && sk->has_reset && sk->reset) {
		if (reset_open(fd, sk) || set_flags(fd, fe))
			goto err;
		return fd;
	}
	if (closed) {
		/* --tcp-close: a socket whose connection is gone */
		pr_info("TCP connection %s is restored closed (--tcp-close)", conn);
		if (apply_options(fd, sk))
			goto err;
		/* as an ended connection: reads end of file, polls hung up */
		if (shutdown(fd, SHUT_RDWR) && errno != ENOTCONN) {
			pr_perror("TCP connection %s: cannot shut it down", conn);
			goto err;
		}
		if (set_flags(fd, fe))
			goto err;
		return fd;
	}
	if (repair && setint(fd, SOL_TCP, TCP_REPAIR, 1)) {
		pr_perror("TCP connection %s: cannot use repair mode", conn);
		goto err;
	}
	if (apply_options(fd, sk) || (!repair && setint(fd, SOL_SOCKET, SO_REUSEADDR, 1)))
		goto err;
	/* a listener may share its port with others that kept SO_REUSEPORT
	 * when it turned its own off: on meanwhile, as it was at its bind */
	if (listener && setint(fd, SOL_SOCKET, SO_REUSEPORT, 1)) {
		pr_perror("TCP socket %u: cannot set SO_REUSEPORT", sk->ino);
		goto err;
	}
	if (sk->has_src_addr && bind_name(fd, sk, repair))
		goto err;
	if (repair && sk->state == TCP_SYN_SENT) {
		if (connect_again(fd, sk, conn) || set_flags(fd, fe))
			goto err;
		return fd;
	}
	if (repair) {
		if (repair_stream(fd, sk, conn) || set_flags(fd, fe))
			goto err;
		return fd;
	}
	if (tcp_stream(sk) && sk->state == TCP_LISTEN &&
	    listen(fd, sk->has_backlog ? (int)sk->backlog : SOMAXCONN)) {
		pr_perror("TCP socket %u: cannot listen on %s", sk->ino,
			  show(sk, &sk->src_addr, sk->src_port, a, sizeof(a)));
		goto err;
	}
	if (!tcp_stream(sk) && sk->has_dst_addr) {
		len = make_addr(sk, &sk->dst_addr, sk->dst_port, &ss);
		if (!len || connect(fd, (struct sockaddr *)&ss, len)) {
			pr_perror("%s socket %u: cannot connect it to %s", proto_name(sk), sk->ino,
				  show(sk, &sk->dst_addr, sk->dst_port, b, sizeof(b)));
			goto err;
		}
	}
	if (setint(fd, SOL_SOCKET, SO_REUSEADDR,
		   carried_int(sk->opts, SOL_SOCKET, SO_REUSEADDR, 0)) ||
	    (listener && setint(fd, SOL_SOCKET, SO_REUSEPORT,
				carried_int(sk->opts, SOL_SOCKET, SO_REUSEPORT, 0)))) {
		pr_perror("%s socket %u: cannot set SO_REUSEADDR/SO_REUSEPORT", proto_name(sk),
			  sk->ino);
		goto err;
	}
	/* the flags only: a socket that is not connected says ENOTCONN */
	if (sk->has_shutdown && sk->shutdown && shutdown(fd, shut_how(sk->shutdown)) &&
	    errno != ENOTCONN) {
		pr_perror("%s socket %u: cannot shut it down", proto_name(sk), sk->ino);
		goto err;
	}
	if (set_flags(fd, fe))
		goto err;
	return fd;
err:
	close(fd);
	return -1;
}

const struct fd_restore_ops inetsk_restore_ops = {STASIS__FD_TYPE__INETSK, inet_open, NULL};

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

static uint32_t csum_add(uint32_t sum, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += p[len - 1] << 8;
	return sum;
}

/*
 * A segment from the peer, as the peer sent it: to the socket's address,
 * from the peer's, at SEQ, through a raw socket (the kernel takes it in
 * while the socket is still in repair mode). A v4-mapped connection is
 * IPv4 on the wire. URG: the first byte of DATA is urgent.
 */
/* A raw socket in the network namespace of socket sk, where the packets
 * fed to it must arrive (a tree's own namespace: docs/netns.md). */
static int raw_socket_of(int sk, bool v4)
{
	int ns = ioctl(sk, SIOCGSKNS), own = -1, fd;

	if (ns >= 0) {
		own = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
		if (own < 0 || setns(ns, CLONE_NEWNET)) {
			if (own >= 0)
				close(own);
			close(ns);
			return -1;
		}
	}
	fd = socket(v4 ? AF_INET : AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (ns >= 0) {
		/* every later step would act in the wrong namespace */
		if (setns(own, CLONE_NEWNET)) {
			pr_perror("cannot come back to our own network namespace");
			abort();
		}
		close(own);
		close(ns);
	}
	return fd;
}

static int feed_segment(const struct pending *p, uint32_t seq, bool fin, bool urg, bool rst,
			const uint8_t *data, size_t len)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	bool v4 = p->family == AF_INET || (!memcmp(p->src, mapped, 12) && !memcmp(p->dst, mapped, 12));
	const uint8_t *from = p->dst + (v4 && p->family == AF_INET6 ? 12 : 0);
	const uint8_t *to = p->src + (v4 && p->family == AF_INET6 ? 12 : 0);
	size_t alen = v4 ? 4 : 16, hlen = v4 ? sizeof(struct iphdr) : sizeof(struct ip6_hdr);
	size_t tlen = sizeof(struct tcphdr) + len;
	uint8_t *pkt = xmalloc(hlen + tlen), pseudo[40] = {0};
	struct tcphdr *th = (struct tcphdr *)(pkt + hlen);
	struct sockaddr_storage ss = {0};
	socklen_t sslen;
	uint32_t sum;
	int fd, ret;

	memset(pkt, 0, hlen + sizeof(*th));
	memcpy(pkt + hlen + sizeof(*th), data, len);
	th->source = htons(p->dport);
	th->dest = htons(p->sport);
	th->seq = htonl(seq);
	th->ack_seq = htonl(p->fin_ack);
	th->doff = sizeof(*th) / 4;
	th->fin = fin;
	th->rst = rst;
	th->ack = 1;
	th->psh = len > 0;
	/* Linux's urgent pointer points after the urgent byte */
	th->urg = urg;
	th->urg_ptr = htons(urg ? 1 : 0);
	th->window = htons(p->fin_window ? p->fin_window : 1);
	/* the pseudo header: addresses, protocol, length */
	memcpy(pseudo, from, alen);
	memcpy(pseudo + alen, to, alen);
	if (v4) {
		pseudo[9] = IPPROTO_TCP;
		pseudo[10] = tlen >> 8;
		pseudo[11] = tlen & 0xff;
		sum = csum_add(0, pseudo, 12);
	} else {
		pseudo[34] = tlen >> 8;
		pseudo[35] = tlen & 0xff;
		pseudo[39] = IPPROTO_TCP;
		sum = csum_add(0, pseudo, 40);
	}
	th->check = htons(csum_fold(csum_add(sum, th, tlen)));
	if (v4) {
		struct iphdr *ip = (struct iphdr *)pkt;
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		ip->version = 4;
		ip->ihl = 5;
		ip->ttl = 64;
		ip->protocol = IPPROTO_TCP;
		ip->tot_len = htons(hlen + tlen);
		memcpy(&ip->saddr, from, 4);
		memcpy(&ip->daddr, to, 4);
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, to, 4);
		sslen = sizeof(*sin);
	} else {
		struct ip6_hdr *ip6 = (struct ip6_hdr *)pkt;
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		ip6->ip6_flow = htonl(6u << 28);
		ip6->ip6_plen = htons(tlen);
		ip6->ip6_nxt = IPPROTO_TCP;
		ip6->ip6_hlim = 64;
		memcpy(&ip6->ip6_src, from, 16);
		memcpy(&ip6->ip6_dst, to, 16);
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, to, 16);
		sslen = sizeof(*sin6);
	}
	fd = raw_socket_of(p->fd, v4);
	if (fd < 0) {
		pr_perror("TCP connection %s: cannot open a raw socket to feed it", p->conn);
		free(pkt);
		return -1;
	}
	ret = sendto(fd, pkt, hlen + tlen, 0, (struct sockaddr *)&ss, sslen);
	close(fd);
	free(pkt);
	if (ret < 0) {
		pr_perror("TCP connection %s: cannot send it its peer's %s", p->conn,
			  fin ? "FIN" : rst ? "reset" : "urgent data");
		return -1;
	}
	return 0;
}

static int feed_fin(const struct pending *p)
{
	return feed_segment(p, p->fin_seq, true, false, false, NULL, 0);
}

/* The peer's reset, at the end of what was received; it ends the
 * connection at once (TCP_CLOSE), or something dropped it. */
static int feed_reset(const struct pending *p)
{
	struct pollfd pf = {p->fd, 0, 0};
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (feed_segment(p, p->fin_seq, false, false, true, NULL, 0))
		return -1;
	/* hung up once closed */
	poll(&pf, 1, 1000);
	if (getsockopt(p->fd, SOL_TCP, TCP_INFO, &ti, &len) || ti.tcpi_state != TCP_CLOSE) {
		pr_err("TCP connection %s: the reset fed to it did not end it (dropped on the way?)",
		       p->conn);
		return -1;
	}
	return 0;
}

/* Pieces fed to a socket: well under the loopback MTU */
#define URG_PIECE (16u << 10)

/*
 * The received data from an urgent byte on, as the peer's segments: the
 * kernel marks the byte urgent as it did the first time (it ignores an
 * urgent pointer into data it has already). The owner is cleared
 * meanwhile, or the task would get SIGURG a second time. A byte the task
 * had read with MSG_OOB is read again here.
 */
static int feed_urgent(struct pending *p)
{
	struct f_owner_ex owner = {0};
	bool owned = !fcntl(p->fd, F_GETOWN_EX, &owner) && owner.pid;
	struct f_owner_ex none = {F_OWNER_PID, 0};
	struct timespec pause = {0, 1000000};
	uint32_t rcv_nxt = 0, end = p->urg_seq + (uint32_t)p->nr_urg_tail;
	int ret = 0, i;
	uint8_t c;

	if (owned && fcntl(p->fd, F_SETOWN_EX, &none)) {
		pr_perror("TCP connection %s: cannot clear its owner", p->conn);
		return -1;
	}
	for (size_t off = 0; !ret && off < p->nr_urg_tail; off += URG_PIECE) {
		size_t n = p->nr_urg_tail - off < URG_PIECE ? p->nr_urg_tail - off : URG_PIECE;

		ret = feed_segment(p, p->urg_seq + off, false, off == 0, false, p->urg_tail + off, n);
	}
	/* the segments go in asynchronously (loopback); SIOCINQ counts only
	 * up to a mark, the queue's sequence number all */
	for (i = 0; !ret && i < 2000; i++) {
		socklen_t len = sizeof(rcv_nxt);

		if (select_queue(p->fd, TCP_RECV_QUEUE) ||
		    getsockopt(p->fd, SOL_TCP, TCP_QUEUE_SEQ, &rcv_nxt, &len) ||
		    select_queue(p->fd, TCP_NO_QUEUE)) {
			pr_perror("TCP connection %s: cannot read its receive sequence", p->conn);
			ret = -1;
			break;
		}
		if (rcv_nxt == end)
			break;
		nanosleep(&pause, NULL);
	}
	if (!ret && rcv_nxt != end) {
		pr_err("TCP connection %s: the %zu bytes from its urgent mark did not go back in "
		       "(%d of them queued)",
		       p->conn, p->nr_urg_tail, (int)(rcv_nxt - p->urg_seq));
		ret = -1;
	}
	if (!ret && p->urg_read && recv(p->fd, &c, 1, MSG_OOB) != 1) {
		pr_perror("TCP connection %s: cannot take its urgent byte as the task had",
			  p->conn);
		ret = -1;
	}
	if (owned && fcntl(p->fd, F_SETOWN_EX, &owner)) {
		pr_perror("TCP connection %s: cannot give its owner back", p->conn);
		ret = -1;
	}
	if (!ret)
		pr_info("TCP connection %s: urgent mark given back, %zu bytes from it", p->conn,
			p->nr_urg_tail);
	return ret;
}

/* The network lock the dump left, removed as the connections come back. */
static int unlock(void)
{
	Stasis__Inventory *inv = records_get("inventory", 0, &stasis__inventory__descriptor);
	int m, ret = 0;

	if (!inv)
		return 0;
	if (inv->network_lock) {
		m = netlock_parse(inv->network_lock);
		if (m < 0) {
			pr_err("the checkpoint's network lock '%s' is unknown", inv->network_lock);
			ret = -1;
		} else if (netlock_unlock(m, inv->root_pid)) {
			ret = -1;
		} else {
			pr_info("network unlock (%s) of tree %u", inv->network_lock, inv->root_pid);
		}
	}
	protobuf_c_message_free_unpacked(&inv->base, NULL);
	return ret;
}

static int getint(int fd, int level, int name)
{
	int v = 0;
	socklen_t len = sizeof(v);

	getsockopt(fd, level, name, &v, &len);
	return v;
}

/*
 * The data the connection had not sent, behind what it had: the send
 * buffer held both at the dump, but what went in as sent may take more
 * room now; it grows meanwhile and goes back to its size (and lock).
 */
static int send_unsent(struct pending *p)
{
	int sndbuf = getint(p->fd, SOL_SOCKET, SO_SNDBUF);
	int lock = getint(p->fd, SOL_SOCKET, SO_BUF_LOCK);
	bool grown = false;
	size_t off = 0;
	int ret = 0;

	while (off < p->nr_unsent) {
		ssize_t n = send(p->fd, p->unsent + off, p->nr_unsent - off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EAGAIN && !grown) {
			grown = true;
			if (!setint(p->fd, SOL_SOCKET, SO_SNDBUFFORCE,
				    sndbuf + 2 * (p->nr_unsent - off) + (256 << 10)))
				continue;
		}
		if (n <= 0) {
			pr_perror("TCP connection %s: cannot queue the %zu bytes it had not sent",
				  p->conn, p->nr_unsent - off);
			ret = -1;
			break;
		}
		off += n;
	}
	if (grown && (setint(p->fd, SOL_SOCKET, SO_SNDBUFFORCE, sndbuf / 2) ||
		      setint(p->fd, SOL_SOCKET, SO_BUF_LOCK, lock))) {
		pr_perror("TCP connection %s: cannot set its send buffer back", p->conn);
		ret = -1;
	}
	return ret;
}

int inet_finish(void)
{
	int ret = unlock();

	/* after the unlock: a lock would drop them; the data first */
	for (size_t i = 0; !ret && i < nr_pendings; i++)
		if ((pendings[i].urg_tail && feed_urgent(&pendings[i])) ||
		    (pendings[i].fin_received && feed_fin(&pendings[i])) ||
		    (pendings[i].reset && feed_reset(&pendings[i])))
			ret = -1;
	/* every connection first, so that none talks to a peer still in repair */
	for (size_t i = 0; i < nr_pendings; i++) {
		struct pending *p = &pendings[i];

		if (setint(p->fd, SOL_TCP, TCP_REPAIR, 0) ||
		    (p->reuseaddr && setint(p->fd, SOL_SOCKET, SO_REUSEADDR, p->reuseaddr))) {
			pr_perror("TCP connection %s: cannot leave repair mode", p->conn);
			ret = -1;
		}
	}
	for (size_t i = 0; i < nr_pendings; i++) {
		struct pending *p = &pendings[i];

		if (!ret && p->nr_unsent && send_unsent(p))
			ret = -1;
		/* an error the task had been told of already */
		if (!ret && p->reset && !p->reset_error_pending)
			getint(p->fd, SOL_SOCKET, SO_ERROR);
		if (!ret && (p->shutdown & RCV_SHUTDOWN) && shutdown(p->fd, SHUT_RD)) {
			pr_perror("TCP connection %s: cannot shut its reading side", p->conn);
			ret = -1;
		}
		/* after the data it had not sent, as the first time */
		if (!ret && p->fin_sent && shutdown(p->fd, SHUT_WR)) {
			pr_perror("TCP connection %s: cannot send its FIN again", p->conn);
			ret = -1;
		}
		free(p->unsent);
		free(p->urg_tail);
		close(p->fd);
	}
	nr_pendings = 0;
	return ret;
}
