/*
 * Inet sockets across a checkpoint.
 *
 *   inet GOFILE tcp v4|v6|mapped [big]  (big: megabytes queued) a listener, an accepted connection and its
 *                                 client (a child), data queued both ways
 *                                 (some of it never sent: the receiver's
 *                                 window is full), an unbound and a bound
 *                                 socket; after GO the queues are read and
 *                                 the connection and the listener still work
 *   inet GOFILE serve PORTFILE [mid]  a listener whose one client is outside
 *                                 the tree (inet --client): data queued both
 *                                 ways; mid: the client sends more while the
 *                                 server is checkpointed
 *   inet GOFILE opts              socket options on TCP, UDP and v6 sockets,
 *                                 read back after GO
 *   inet GOFILE dgram             UDP (bound, connected, shut down,
 *                                 broadcast), UDP-lite, ICMP echo and raw
 *                                 sockets, v4 and v6
 *   inet GOFILE established       one established connection (for the
 *                                 refusal and --tcp-close)
 *   inet GOFILE closed            like established, but expects after GO to
 *                                 find the connection closed (--tcp-close)
 *   inet GOFILE reset             connections reset by their peer with data
 *                                 unread, v4 and v6, the error pending or
 *                                 taken by a send
 *   inet GOFILE inflight          a listener with a connection not accepted
 *   inet GOFILE reuseport         two listeners of one port (SO_REUSEPORT at
 *                                 the bind, one has turned it off since)
 *   inet GOFILE corked            a UDP datagram being built (UDP_CORK), which
 *                                 stasis refuses
 *   inet GOFILE connecting        a connect in progress (SYN_SENT) to a full
 *                                 listener, which connects after the restore
 *   inet GOFILE halfclosed        connections shut down one way (FIN_WAIT2 and
 *                                 CLOSE_WAIT ends), v4 and v6, data queued
 *
 * Helper for the suite (no GOFILE):
 *   inet --client PORTFILE GOFILE [MIDFILE]  connect to the port written in
 *                                  PORTFILE, send, (send again once MIDFILE
 *                                  exists,) wait for GOFILE, then check what
 *                                  the server sent before and after
 *
 * Sabotage: queue (a byte of a queue is eaten), opts (an option changes),
 * dgram (a datagram socket is connected elsewhere), fin (the data before a
 * FIN is dropped), connecting (the connect in progress is dissolved), reuseport (SO_REUSEPORT
 * turns on).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "testprog.h"

#ifndef IPPROTO_UDPLITE
#define IPPROTO_UDPLITE 136
#endif

static int family = AF_INET;
static bool mapped;

union addr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
	struct sockaddr_storage ss;
};

static socklen_t loopback(union addr *a, int fam, unsigned port)
{
	memset(a, 0, sizeof(*a));
	if (fam == AF_INET) {
		a->in.sin_family = AF_INET;
		a->in.sin_port = htons(port);
		a->in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof(a->in);
	}
	a->in6.sin6_family = AF_INET6;
	a->in6.sin6_port = htons(port);
	if (mapped)
		inet_pton(AF_INET6, "::ffff:127.0.0.1", &a->in6.sin6_addr);
	else
		a->in6.sin6_addr = in6addr_loopback;
	return sizeof(a->in6);
}

static unsigned port_of(int fd)
{
	union addr a;
	socklen_t len = sizeof(a);

	if (getsockname(fd, &a.sa, &len))
		tp_die("getsockname");
	return ntohs(a.sa.sa_family == AF_INET ? a.in.sin_port : a.in6.sin6_port);
}

static int getint(int fd, int level, int name)
{
	int v = -12345;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, level, name, &v, &len))
		return -12345;
	return v;
}

static void setint(int fd, int level, int name, int v)
{
	if (setsockopt(fd, level, name, &v, sizeof(v)))
		tp_die("setsockopt %d:%d = %d", level, name, v);
}

/* Names, state and the options that tell sockets apart, as one string. */
static void describe(int fd, char *out, size_t size)
{
	union addr a, b;
	socklen_t la = sizeof(a), lb = sizeof(b);
	char sa[64] = "-", sb[64] = "-";
	struct tcp_info ti;
	socklen_t lt = sizeof(ti);
	int state = -1;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	if (!getsockname(fd, &a.sa, &la))
		inet_ntop(a.sa.sa_family, a.sa.sa_family == AF_INET ? (void *)&a.in.sin_addr
								    : (void *)&a.in6.sin6_addr,
			  sa, sizeof(sa));
	if (!getpeername(fd, &b.sa, &lb))
		inet_ntop(b.sa.sa_family, b.sa.sa_family == AF_INET ? (void *)&b.in.sin_addr
								    : (void *)&b.in6.sin6_addr,
			  sb, sizeof(sb));
	if (getint(fd, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_TCP &&
	    !getsockopt(fd, SOL_TCP, TCP_INFO, &ti, &lt))
		state = ti.tcpi_state;
	snprintf(out, size, "dom %d type %d proto %d local %s:%u peer %s:%u state %d%s",
		 getint(fd, SOL_SOCKET, SO_DOMAIN), getint(fd, SOL_SOCKET, SO_TYPE),
		 getint(fd, SOL_SOCKET, SO_PROTOCOL), sa,
		 ntohs(a.sa.sa_family == AF_INET ? a.in.sin_port : a.in6.sin6_port), sb,
		 lb < sizeof(b) || b.sa.sa_family
		     ? ntohs(b.sa.sa_family == AF_INET ? b.in.sin_port : b.in6.sin6_port)
		     : 0,
		 state, fcntl(fd, F_GETFL) & O_NONBLOCK ? " nonblocking" : "");
}

/* ---- the sockets a mode checks after GO: described before and after ---- */

#define MAX_SKS 32
static struct {
	int fd;
	const char *what;
	char before[256];
} sks[MAX_SKS];
static int nr_sks;

static void remember(int fd, const char *what)
{
	sks[nr_sks].fd = fd;
	sks[nr_sks].what = what;
	describe(fd, sks[nr_sks].before, sizeof(sks[nr_sks].before));
	nr_sks++;
}

static void check_remembered(void)
{
	char now[256];

	for (int i = 0; i < nr_sks; i++) {
		describe(sks[i].fd, now, sizeof(now));
		if (strcmp(now, sks[i].before))
			tp_fail("%s: was \"%s\", now \"%s\"", sks[i].what, sks[i].before, now);
	}
}

/* ---- stream helpers ---- */

static size_t send_all_nb(int fd, unsigned seed, size_t max)
{
	static unsigned char chunk[65536];
	size_t total = 0;

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	while (total < max) {
		size_t n = max - total < sizeof(chunk) ? max - total : sizeof(chunk);
		ssize_t r;

		for (size_t i = 0; i < n; i++)
			chunk[i] = (unsigned char)tp_pattern(total + i, seed);
		r = send(fd, chunk, n, MSG_NOSIGNAL);
		if (r < 0 && errno == EAGAIN)
			break;
		if (r <= 0)
			tp_die("send");
		total += r;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return total;
}

static void send_all(int fd, const void *p, size_t n)
{
	while (n) {
		ssize_t r = send(fd, p, n, MSG_NOSIGNAL);

		if (r <= 0) {
			tp_fail("send: %s", strerror(errno));
			return;
		}
		p = (const char *)p + r;
		n -= r;
	}
}

/* Reads len bytes and compares them with the pattern of seed (from 0). */
static bool expect(int fd, const char *what, unsigned seed, size_t len)
{
	static unsigned char chunk[65536];
	struct timeval tv = {10, 0};
	size_t got = 0;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (got < len) {
		size_t n = len - got < sizeof(chunk) ? len - got : sizeof(chunk);
		ssize_t r = recv(fd, chunk, n, 0);

		if (r <= 0) {
			tp_fail("%s: %zu of %zu bytes, then %s", what, got, len,
				r ? strerror(errno) : "end of stream");
			return false;
		}
		for (ssize_t i = 0; i < r; i++)
			if (chunk[i] != (unsigned char)tp_pattern(got + i, seed)) {
				tp_fail("%s: byte %zu differs", what, got + i);
				return false;
			}
		got += r;
	}
	return true;
}

static int tcp_socket(void)
{
	int fd = socket(family, SOCK_STREAM, 0);

	if (fd < 0)
		tp_die("socket");
	if (family == AF_INET6)
		setint(fd, SOL_IPV6, IPV6_V6ONLY, 0);
	return fd;
}

static int tcp_listener(unsigned backlog)
{
	union addr a;
	socklen_t len = loopback(&a, family, 0);
	int fd = tcp_socket();

	if (bind(fd, &a.sa, len) || listen(fd, backlog))
		tp_die("listener");
	return fd;
}

static int tcp_connect(unsigned port)
{
	union addr a;
	socklen_t len = loopback(&a, family, port);
	int fd = tcp_socket();

	if (connect(fd, &a.sa, len))
		tp_die("connect to %u", port);
	return fd;
}

static void sabotage_queue(int fd)
{
	char c;

	if (tp_sabotaged("queue") && recv(fd, &c, 1, 0) != 1)
		tp_die("sabotage");
}

/* ---- tcp: server and client in the tree ---- */

#define CLIENT_SEED 11
#define SERVER_SEED 22

static int mode_tcp(const char *fam, bool big)
{
	int l, c, s, unbound, bound, pfd[2], status;
	size_t to_server, to_client;
	union addr a;
	socklen_t alen;
	char r;
	pid_t child;

	if (!strcmp(fam, "v6")) {
		family = AF_INET6;
	} else if (!strcmp(fam, "mapped")) {
		family = AF_INET6;
		mapped = true;
	} else if (strcmp(fam, "v4")) {
		tp_die("family %s", fam);
	}
	l = tcp_listener(7);
	unbound = tcp_socket();
	bound = tcp_socket();
	alen = loopback(&a, family, 0);
	if (bind(bound, &a.sa, alen))
		tp_die("bind");
	c = tcp_socket();
	/* a small receive window on the client: part of the server's data
	 * stays in its send queue unsent */
	setint(c, SOL_SOCKET, SO_RCVBUF, big ? 2 << 20 : 32768);
	alen = loopback(&a, family, port_of(l));
	if (connect(c, &a.sa, alen))
		tp_die("connect");
	s = accept(l, NULL, NULL);
	if (s < 0)
		tp_die("accept");
	/* big: queues larger than a checkpoint record */
	setint(s, SOL_SOCKET, SO_SNDBUF, big ? 2 << 20 : 65536);
	to_server = send_all_nb(c, CLIENT_SEED, 100000);
	usleep(100000);
	to_client = send_all_nb(s, SERVER_SEED, 4 << 20);
	if (pipe(pfd))
		tp_die("pipe");
	child = fork();
	if (child < 0)
		tp_die("fork");
	if (!child) {
		/* the client: its end of the connection */
		close(s);
		close(l);
		close(pfd[1]);
		tp_pid = getpid();
		nr_sks = 0;
		remember(c, "client");
		if (read(pfd[0], &r, 1) != 1)
			_exit(2);
		tp_wait_go();
		check_remembered();
		sabotage_queue(c);
		expect(c, "data the server sent before the dump", SERVER_SEED, to_client);
		send_all(c, "ping", 4);
		expect(c, "the server's answer after the restore", 33, 1000);
		return tp_finish();
	}
	close(c);
	close(pfd[0]);
	fcntl(l, F_SETFL, O_NONBLOCK);
	remember(l, "listener");
	remember(s, "accepted connection");
	remember(unbound, "unbound socket");
	remember(bound, "bound socket");
	printf("queued: %zu bytes to the server, %zu to the client\n", to_server, to_client);
	if (write(pfd[1], "x", 1) != 1)
		tp_die("write");
	tp_ready();
	tp_wait_go();
	check_remembered();
	expect(s, "data the client sent before the dump", CLIENT_SEED, to_server);
	{
		char ping[4];
		unsigned char answer[1000];

		if (recv(s, ping, 4, MSG_WAITALL) != 4 || memcmp(ping, "ping", 4))
			tp_fail("no ping from the client after the restore");
		for (size_t i = 0; i < sizeof(answer); i++)
			answer[i] = (unsigned char)tp_pattern(i, 33);
		send_all(s, answer, sizeof(answer));
	}
	/* the listener takes a new connection */
	{
		int n = tcp_connect(port_of(l)), m = accept(l, NULL, NULL);

		if (m < 0)
			tp_fail("the listener does not accept after the restore");
		else
			send_all(m, "new", 3);
		if (m >= 0 && (recv(n, &r, 1, MSG_WAITALL) != 1 || r != 'n'))
			tp_fail("no data on a new connection");
	}
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status))
		tp_fail("the client (child %d) failed", child);
	return tp_finish();
}

/* ---- serve: the client is outside the tree ---- */

static int mode_serve(const char *portfile, bool mid)
{
	int l, s;
	FILE *f;
	char ping[4];
	unsigned char answer[5000];

	l = tcp_listener(5);
	f = fopen(portfile, "w");
	if (!f)
		tp_die("%s", portfile);
	fprintf(f, "%u\n", port_of(l));
	fclose(f);
	s = accept(l, NULL, NULL);
	if (s < 0)
		tp_die("accept");
	/* the client sent 50000 bytes right away; answer with 70000 */
	usleep(100000);
	if (send_all_nb(s, SERVER_SEED, 70000) != 70000)
		tp_die("send");
	remember(s, "connection to the outside client");
	remember(l, "listener");
	tp_ready();
	tp_wait_go();
	check_remembered();
	sabotage_queue(s);
	expect(s, "data the client sent before the dump", CLIENT_SEED, 50000);
	if (mid && (recv(s, ping, 4, MSG_WAITALL) != 4 || memcmp(ping, "mid!", 4)))
		tp_fail("no data the client sent while the server was checkpointed");
	if (recv(s, ping, 4, MSG_WAITALL) != 4 || memcmp(ping, "ping", 4))
		tp_fail("no ping from the client after the restore");
	for (size_t i = 0; i < sizeof(answer); i++)
		answer[i] = (unsigned char)tp_pattern(i, 44);
	send_all(s, answer, sizeof(answer));
	return tp_finish();
}

static int client(const char *portfile, const char *gofile, const char *midfile)
{
	unsigned port = 0;
	FILE *f;
	int fd;

	tp_gofile = gofile;
	tp_pid = getpid();
	for (int i = 0; i < 200 && !port; i++) {
		f = fopen(portfile, "r");
		if (!f || fscanf(f, "%u", &port) != 1)
			port = 0;
		if (f)
			fclose(f);
		if (!port)
			usleep(50000);
	}
	if (!port)
		tp_die("no port in %s", portfile);
	fd = tcp_connect(port);
	if (send_all_nb(fd, CLIENT_SEED, 50000) != 50000)
		tp_die("send");
	if (midfile) {
		/* while the server is checkpointed: locked, these are retransmitted */
		struct timespec ts = {0, 10 * 1000 * 1000};

		while (access(midfile, F_OK))
			nanosleep(&ts, NULL);
		send_all(fd, "mid!", 4);
	}
	tp_wait_go();
	expect(fd, "data the server sent before the dump", SERVER_SEED, 70000);
	send_all(fd, "ping", 4);
	expect(fd, "the server's answer after the restore", 44, 5000);
	return tp_finish();
}

/* ---- opts: options read back equal ---- */

struct opt {
	int level, name, value;
	const char *what;
};

static const struct opt tcp_opts[] = {
	{SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR"},
	{SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT"},
	{SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE"},
	{SOL_SOCKET, SO_PRIORITY, 5, "SO_PRIORITY"},
	{SOL_SOCKET, SO_MARK, 77, "SO_MARK"},
	{SOL_SOCKET, SO_RCVLOWAT, 3, "SO_RCVLOWAT"},
	{SOL_SOCKET, SO_OOBINLINE, 1, "SO_OOBINLINE"},
	{SOL_SOCKET, SO_SNDBUF, 40000, "SO_SNDBUF"},
	{SOL_SOCKET, SO_RCVBUF, 50000, "SO_RCVBUF"},
	{SOL_TCP, TCP_NODELAY, 1, "TCP_NODELAY"},
	{SOL_TCP, TCP_KEEPIDLE, 111, "TCP_KEEPIDLE"},
	{SOL_TCP, TCP_KEEPINTVL, 22, "TCP_KEEPINTVL"},
	{SOL_TCP, TCP_KEEPCNT, 4, "TCP_KEEPCNT"},
	{SOL_TCP, TCP_USER_TIMEOUT, 5000, "TCP_USER_TIMEOUT"},
	{SOL_IP, IP_TOS, IPTOS_THROUGHPUT, "IP_TOS"},
	{SOL_IP, IP_TTL, 33, "IP_TTL"},
	{SOL_IP, IP_FREEBIND, 1, "IP_FREEBIND"},
	{SOL_IP, IP_TRANSPARENT, 1, "IP_TRANSPARENT"},
	{0, 0, 0, NULL},
};

static const struct opt cork_opts[] = {
	{SOL_TCP, TCP_CORK, 1, "TCP_CORK"},
	{0, 0, 0, NULL},
};

static const struct opt udp_opts[] = {
	{SOL_SOCKET, SO_BROADCAST, 1, "SO_BROADCAST"},
	{SOL_SOCKET, SO_NO_CHECK, 1, "SO_NO_CHECK"},
	{SOL_SOCKET, SO_DONTROUTE, 1, "SO_DONTROUTE"},
	{SOL_SOCKET, SO_TIMESTAMP, 1, "SO_TIMESTAMP"},
	{SOL_IP, IP_MULTICAST_TTL, 9, "IP_MULTICAST_TTL"},
	{SOL_IP, IP_MULTICAST_LOOP, 0, "IP_MULTICAST_LOOP"},
	{SOL_IP, IP_PKTINFO, 1, "IP_PKTINFO"},
	{SOL_IP, IP_RECVTOS, 1, "IP_RECVTOS"},
	{0, 0, 0, NULL},
};

static const struct opt v6_opts[] = {
	{SOL_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY"},
	{SOL_IPV6, IPV6_UNICAST_HOPS, 12, "IPV6_UNICAST_HOPS"},
	{SOL_IPV6, IPV6_MULTICAST_HOPS, 13, "IPV6_MULTICAST_HOPS"},
	{SOL_IPV6, IPV6_MULTICAST_LOOP, 0, "IPV6_MULTICAST_LOOP"},
	{SOL_IPV6, IPV6_TCLASS, 0x20, "IPV6_TCLASS"},
	{SOL_IPV6, IPV6_RECVPKTINFO, 1, "IPV6_RECVPKTINFO"},
	{0, 0, 0, NULL},
};

#define MAX_OPT_SKS 8
static struct {
	int fd;
	const struct opt *set;
	int values[32];
	struct timeval rcvtimeo, sndtimeo;
	struct linger linger;
	char dev[IFNAMSIZ];
	struct sock_filter filter[8];
	socklen_t filter_len;
} osks[MAX_OPT_SKS];
static int nr_osks;

static void read_opts(int i, int *values, struct timeval *rt, struct timeval *st,
		      struct linger *lg, char *dev, struct sock_filter *filter, socklen_t *flen)
{
	socklen_t len;

	for (int j = 0; osks[i].set[j].what; j++)
		values[j] = getint(osks[i].fd, osks[i].set[j].level, osks[i].set[j].name);
	len = sizeof(*rt);
	getsockopt(osks[i].fd, SOL_SOCKET, SO_RCVTIMEO, rt, &len);
	len = sizeof(*st);
	getsockopt(osks[i].fd, SOL_SOCKET, SO_SNDTIMEO, st, &len);
	len = sizeof(*lg);
	getsockopt(osks[i].fd, SOL_SOCKET, SO_LINGER, lg, &len);
	len = IFNAMSIZ;
	memset(dev, 0, IFNAMSIZ);
	getsockopt(osks[i].fd, SOL_SOCKET, SO_BINDTODEVICE, dev, &len);
	memset(filter, 0, 8 * sizeof(*filter));
	*flen = 8;
	if (getsockopt(osks[i].fd, SOL_SOCKET, SO_GET_FILTER, filter, flen))
		*flen = 0;
}

static int opt_socket(int fam, int type, const struct opt *set)
{
	int fd = socket(fam, type, 0);
	int i = nr_osks++;

	if (fd < 0)
		tp_die("socket");
	osks[i].fd = fd;
	osks[i].set = set;
	for (int j = 0; set[j].what; j++)
		setint(fd, set[j].level, set[j].name, set[j].value);
	return fd;
}

static int mode_opts(void)
{
	struct timeval tv = {3, 250000};
	struct linger lg = {1, 17};
	/* accept only packets shorter than 100 bytes */
	struct sock_filter prog[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
	    BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 100, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, 0),
	    BPF_STMT(BPF_RET | BPF_K, 0xffff),
	};
	struct sock_fprog fp = {sizeof(prog) / sizeof(prog[0]), prog};
	int t, u, v6, l, c, s, half, s2;
	union addr a;
	socklen_t alen;

	t = opt_socket(AF_INET, SOCK_STREAM, tcp_opts);
	setsockopt(t, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	tv.tv_sec = 7;
	setsockopt(t, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(t, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	if (setsockopt(t, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3))
		tp_die("SO_BINDTODEVICE");
	u = opt_socket(AF_INET, SOCK_DGRAM, udp_opts);
	if (setsockopt(u, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof(fp)))
		tp_die("SO_ATTACH_FILTER");
	v6 = opt_socket(AF_INET6, SOCK_DGRAM, v6_opts);
	alen = loopback(&a, AF_INET6, 0);
	if (bind(v6, &a.sa, alen))
		tp_die("bind v6");
	/* an established connection with options of its own: corked, and shut
	 * down for reading */
	l = tcp_listener(3);
	setint(l, SOL_SOCKET, SO_REUSEADDR, 1);
	c = opt_socket(AF_INET, SOCK_STREAM, cork_opts);
	alen = loopback(&a, AF_INET, port_of(l));
	if (connect(c, &a.sa, alen))
		tp_die("connect");
	s = accept(l, NULL, NULL);
	half = opt_socket(AF_INET, SOCK_STREAM, tcp_opts + 9); /* TCP_NODELAY on */
	if (connect(half, &a.sa, alen))
		tp_die("connect");
	s2 = accept(l, NULL, NULL);
	if (s < 0 || s2 < 0)
		tp_die("accept");
	shutdown(half, SHUT_RD);
	remember(half, "half-closed connection");
	remember(c, "corked connection");
	remember(s, "its server end");
	remember(l, "listener");
	for (int i = 0; i < nr_osks; i++)
		read_opts(i, osks[i].values, &osks[i].rcvtimeo, &osks[i].sndtimeo, &osks[i].linger,
			  osks[i].dev, osks[i].filter, &osks[i].filter_len);
	if (osks[0].linger.l_linger != 17 || strcmp(osks[0].dev, "lo") || osks[1].filter_len != 4)
		tp_die("options did not take");
	tp_ready();
	tp_wait_go();
	if (tp_sabotaged("opts"))
		setint(t, SOL_TCP, TCP_KEEPCNT, 9);
	check_remembered();
	for (int i = 0; i < nr_osks; i++) {
		int values[32];
		struct timeval rt, st;
		struct linger lgn;
		char dev[IFNAMSIZ];
		struct sock_filter filter[8];
		socklen_t flen;

		read_opts(i, values, &rt, &st, &lgn, dev, filter, &flen);
		for (int j = 0; osks[i].set[j].what; j++)
			if (values[j] != osks[i].values[j])
				tp_fail("socket %d: %s was %d, now %d", i, osks[i].set[j].what,
					osks[i].values[j], values[j]);
		if (memcmp(&rt, &osks[i].rcvtimeo, sizeof(rt)) ||
		    memcmp(&st, &osks[i].sndtimeo, sizeof(st)))
			tp_fail("socket %d: its timeouts changed", i);
		if (memcmp(&lgn, &osks[i].linger, sizeof(lgn)))
			tp_fail("socket %d: SO_LINGER changed", i);
		if (strcmp(dev, osks[i].dev))
			tp_fail("socket %d: SO_BINDTODEVICE was \"%s\", now \"%s\"", i, osks[i].dev,
				dev);
		if (flen != osks[i].filter_len || memcmp(filter, osks[i].filter, sizeof(filter)))
			tp_fail("socket %d: its socket filter changed", i);
	}
	{
		char ch;
		ssize_t n = recv(half, &ch, 1, MSG_DONTWAIT);

		if (n != 0)
			tp_fail("the half-closed connection reads %zd, not end of stream", n);
		send_all(half, "x", 1);
		if (recv(s2, &ch, 1, 0) != 1 || ch != 'x')
			tp_fail("the half-closed connection does not send");
		send_all(c, "corked", 6);
	}
	return tp_finish();
}

/* ---- dgram: UDP, UDP-lite, ICMP, raw ---- */

static int dgram(int fam, int type, int proto)
{
	int fd = socket(fam, type, proto);

	if (fd < 0)
		tp_die("socket %d %d %d", fam, type, proto);
	return fd;
}

static int mode_dgram(void)
{
	int ub, ua, uc, us, ul, ic, ic6, raw, u6, u6c, raw6;
	uint32_t f6[8], g6[8];
	socklen_t flen = sizeof(g6);
	union addr a;
	socklen_t alen;
	char msg[16];

	/* two UDP sockets connected to each other */
	ua = dgram(AF_INET, SOCK_DGRAM, 0);
	alen = loopback(&a, AF_INET, 0);
	if (bind(ua, &a.sa, alen))
		tp_die("bind");
	ub = dgram(AF_INET, SOCK_DGRAM, 0);
	alen = loopback(&a, AF_INET, port_of(ua));
	if (connect(ub, &a.sa, alen))
		tp_die("connect");
	alen = loopback(&a, AF_INET, port_of(ub));
	if (connect(ua, &a.sa, alen))
		tp_die("connect");
	/* bound to any address, broadcast */
	uc = dgram(AF_INET, SOCK_DGRAM, 0);
	setint(uc, SOL_SOCKET, SO_BROADCAST, 1);
	memset(&a, 0, sizeof(a));
	a.in.sin_family = AF_INET;
	if (bind(uc, &a.sa, sizeof(a.in)))
		tp_die("bind any");
	/* connected and shut down both ways */
	us = dgram(AF_INET, SOCK_DGRAM, 0);
	alen = loopback(&a, AF_INET, port_of(ua));
	if (connect(us, &a.sa, alen) || shutdown(us, SHUT_RDWR))
		tp_die("shutdown");
	ul = dgram(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE);
	alen = loopback(&a, AF_INET, 0);
	if (bind(ul, &a.sa, alen))
		tp_die("bind udplite");
	ic = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
	ic6 = socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6);
	if (ic < 0 || ic6 < 0)
		tp_die("ICMP socket (net.ipv4.ping_group_range?)");
	alen = loopback(&a, AF_INET, 0);
	if (bind(ic, &a.sa, alen))
		tp_die("bind icmp");
	raw = dgram(AF_INET, SOCK_RAW, IPPROTO_UDP);
	alen = loopback(&a, AF_INET, 0);
	if (bind(raw, &a.sa, alen))
		tp_die("bind raw");
	u6 = dgram(AF_INET6, SOCK_DGRAM, 0);
	alen = loopback(&a, AF_INET6, 0);
	if (bind(u6, &a.sa, alen))
		tp_die("bind v6");
	u6c = dgram(AF_INET6, SOCK_DGRAM, 0);
	alen = loopback(&a, AF_INET6, port_of(u6));
	if (connect(u6c, &a.sa, alen))
		tp_die("connect v6");
	/* a raw ICMPv6 socket that blocks some types (ICMP6_FILTER) */
	raw6 = dgram(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
	memset(f6, 0, sizeof(f6));
	f6[0] = 1u << 13;
	f6[4] = 0x80000001u;
	if (setsockopt(raw6, IPPROTO_ICMPV6, 1 /* ICMP6_FILTER */, f6, sizeof(f6)))
		tp_die("ICMP6_FILTER");
	fcntl(ua, F_SETFL, O_NONBLOCK);
	remember(ua, "UDP a");
	remember(ub, "UDP b");
	remember(uc, "UDP bound to any");
	remember(us, "UDP shut down");
	remember(ul, "UDP-lite");
	remember(ic, "ICMP");
	remember(ic6, "ICMPv6");
	remember(raw, "raw");
	remember(u6, "UDP v6");
	remember(u6c, "UDP v6 connected");
	tp_ready();
	tp_wait_go();
	if (tp_sabotaged("dgram")) {
		alen = loopback(&a, AF_INET, port_of(uc));
		connect(ub, &a.sa, alen);
	}
	check_remembered();
	if (getint(uc, SOL_SOCKET, SO_BROADCAST) != 1)
		tp_fail("SO_BROADCAST is off");
	if (tp_sabotaged("dgram"))
		setsockopt(raw6, IPPROTO_ICMPV6, 1, (uint32_t[8]){0}, sizeof(f6));
	memset(g6, 0, sizeof(g6));
	if (getsockopt(raw6, IPPROTO_ICMPV6, 1, g6, &flen) || flen != sizeof(g6) ||
	    memcmp(f6, g6, sizeof(f6)))
		tp_fail("the raw ICMPv6 socket's ICMP6_FILTER is %08x %08x..., was %08x %08x...",
			g6[0], g6[4], f6[0], f6[4]);
	/* the connected pair still talks, the shut down one does not */
	{
		struct timeval tv = {2, 0};

		setsockopt(ub, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(u6, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	send_all(ua, "to b", 4);
	if (recv(ub, msg, sizeof(msg), 0) != 4 || memcmp(msg, "to b", 4))
		tp_fail("UDP b did not get a's datagram");
	send_all(u6c, "v6", 2);
	if (recv(u6, msg, sizeof(msg), 0) != 2 || memcmp(msg, "v6", 2))
		tp_fail("UDP v6 did not get the datagram");
	if (send(us, "x", 1, MSG_NOSIGNAL) >= 0 || errno != EPIPE)
		tp_fail("the shut down UDP socket can send");
	{
		struct pollfd pf = {us, POLLIN | POLLRDHUP, 0};

		if (poll(&pf, 1, 0) != 1 || !(pf.revents & POLLHUP) || !(pf.revents & POLLRDHUP))
			tp_fail("the shut down UDP socket does not poll as hung up (0x%x)",
				pf.revents);
	}
	return tp_finish();
}

/* ---- established, closed, inflight ---- */

static int mode_established(bool closed)
{
	int l = tcp_listener(2), c = tcp_connect(port_of(l)), s = accept(l, NULL, NULL);
	char ch;

	send_all(c, "x", 1);
	tp_ready();
	tp_wait_go();
	if (!closed) {
		if (recv(s, &ch, 1, 0) != 1 || ch != 'x')
			tp_fail("the queued byte is gone");
		send_all(s, "y", 1);
		if (recv(c, &ch, 1, 0) != 1 || ch != 'y')
			tp_fail("the connection does not work");
		return tp_finish();
	}
	/* --tcp-close: both ends are ended connections */
	for (int i = 0; i < 2; i++) {
		int fd = i ? c : s;
		struct pollfd pf = {fd, POLLIN, 0};
		struct tcp_info ti;
		socklen_t len = sizeof(ti);

		if (recv(fd, &ch, 1, MSG_DONTWAIT) != 0)
			tp_fail("%s: a connection restored closed does not read end of file",
				i ? "client" : "server");
		if (poll(&pf, 1, 0) != 1 || !(pf.revents & POLLHUP))
			tp_fail("%s: a connection restored closed does not poll hung up",
				i ? "client" : "server");
		if (getsockopt(fd, SOL_TCP, TCP_INFO, &ti, &len) || ti.tcpi_state != TCP_CLOSE)
			tp_fail("%s: a connection restored closed is not in state CLOSE",
				i ? "client" : "server");
	}
	{
		int fl = getint(l, SOL_SOCKET, SO_ACCEPTCONN);

		if (fl != 1)
			tp_fail("the listener is not listening");
	}
	return tp_finish();
}

/* ---- halfclosed: a FIN sent one way, data queued both ways ---- */

static int mode_halfclosed(void)
{
	int a[2], b[2];
	char buf[16];

	for (int i = 0; i < 2; i++) {
		int l;

		family = i ? AF_INET6 : AF_INET;
		l = tcp_listener(1);
		a[i] = tcp_connect(port_of(l));
		b[i] = accept(l, NULL, NULL);
		if (b[i] < 0)
			tp_die("accept");
		close(l);
		send_all(a[i], "data", 4);
		send_all(b[i], "back", 4);
		/* a: FIN_WAIT2, b: CLOSE_WAIT with "data" and the FIN unread */
		if (shutdown(a[i], SHUT_WR))
			tp_die("shutdown");
	}
	usleep(100000);
	for (int i = 0; i < 2; i++) {
		remember(a[i], i ? "v6 end that sent its FIN" : "v4 end that sent its FIN");
		remember(b[i], i ? "v6 end that got the FIN" : "v4 end that got the FIN");
	}
	tp_ready();
	tp_wait_go();
	check_remembered();
	for (int i = 0; i < 2; i++) {
		struct timeval tv = {5, 0};

		setsockopt(a[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(b[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (tp_sabotaged("fin") && shutdown(b[i], SHUT_RD) == 0)
			recv(b[i], buf, sizeof(buf), MSG_DONTWAIT);
		if (recv(b[i], buf, 4, MSG_WAITALL) != 4 || memcmp(buf, "data", 4))
			tp_fail("%d: the data before the FIN is not there", i);
		if (recv(b[i], buf, 1, 0) != 0)
			tp_fail("%d: no end of stream after the data", i);
		if (recv(a[i], buf, 4, MSG_WAITALL) != 4 || memcmp(buf, "back", 4))
			tp_fail("%d: the data queued the other way is not there", i);
		send_all(b[i], "more", 4);
		if (recv(a[i], buf, 4, MSG_WAITALL) != 4 || memcmp(buf, "more", 4))
			tp_fail("%d: the half-closed connection does not carry data after the "
				"restore",
				i);
		if (send(a[i], "x", 1, MSG_NOSIGNAL) >= 0 || errno != EPIPE)
			tp_fail("%d: the end that sent its FIN can still send", i);
	}
	return tp_finish();
}

/* ---- connecting: a SYN the full listener drops, still retried ---- */

static int mode_connecting(void)
{
	int l = tcp_listener(0), c1, c2, err = -1, m;
	unsigned port = port_of(l), local;
	socklen_t len = sizeof(err);
	union addr a;
	socklen_t alen = loopback(&a, family, port);
	struct pollfd pf;

	/* the accept queue is full with c1: c2's SYNs are dropped */
	c1 = tcp_connect(port);
	c2 = tcp_socket();
	fcntl(c2, F_SETFL, O_NONBLOCK);
	if (!connect(c2, &a.sa, alen) || errno != EINPROGRESS)
		tp_die("connect did not stay in progress");
	local = port_of(c2);
	usleep(100000);
	remember(l, "listener");
	tp_ready();
	tp_wait_go();
	check_remembered();
	if (tp_sabotaged("connecting")) {
		struct sockaddr sa = {.sa_family = AF_UNSPEC};

		connect(c2, &sa, sizeof(sa));
	}
	/* the restored listener is empty (--skip-in-flight): c2 gets through */
	pf = (struct pollfd){c2, POLLOUT, 0};
	if (poll(&pf, 1, 15000) != 1 || getsockopt(c2, SOL_SOCKET, SO_ERROR, &err, &len) || err)
		tp_fail("the connecting socket did not connect (error %d)", err);
	else if (port_of(c2) != local)
		tp_fail("the connecting socket's port was %u, now %u", local, port_of(c2));
	fcntl(l, F_SETFL, 0);
	m = accept(l, NULL, NULL);
	if (m < 0)
		tp_fail("the listener did not accept the connection");
	else {
		char ch;

		send_all(m, "z", 1);
		if (recv(c2, &ch, 1, 0) != 1 || ch != 'z')
			tp_fail("no data on the connection made after the restore");
	}
	(void)c1;
	return tp_finish();
}

/* ---- reuseport: two listeners of one port, one has turned it off ---- */

static int mode_reuseport(void)
{
	union addr a;
	socklen_t alen = loopback(&a, family, 0);
	int l1 = tcp_socket(), l2 = tcp_socket();

	setint(l1, SOL_SOCKET, SO_REUSEPORT, 1);
	setint(l2, SOL_SOCKET, SO_REUSEPORT, 1);
	if (bind(l1, &a.sa, alen) || listen(l1, 4))
		tp_die("listener 1");
	alen = loopback(&a, family, port_of(l1));
	if (bind(l2, &a.sa, alen) || listen(l2, 4))
		tp_die("listener 2");
	setint(l1, SOL_SOCKET, SO_REUSEPORT, 0);
	remember(l1, "listener without SO_REUSEPORT now");
	remember(l2, "listener with SO_REUSEPORT");
	tp_ready();
	tp_wait_go();
	if (tp_sabotaged("reuseport"))
		setint(l1, SOL_SOCKET, SO_REUSEPORT, 1);
	check_remembered();
	if (getint(l1, SOL_SOCKET, SO_REUSEPORT) != 0 || getint(l2, SOL_SOCKET, SO_REUSEPORT) != 1)
		tp_fail("SO_REUSEPORT changed: %d and %d, was 0 and 1",
			getint(l1, SOL_SOCKET, SO_REUSEPORT), getint(l2, SOL_SOCKET, SO_REUSEPORT));
	return tp_finish();
}

/* ---- corked: a UDP datagram being built ---- */

static int mode_corked(void)
{
	int r = dgram(AF_INET, SOCK_DGRAM, 0), u = dgram(AF_INET, SOCK_DGRAM, 0);
	union addr a;
	socklen_t alen = loopback(&a, AF_INET, 0);
	char buf[8];

	if (bind(r, &a.sa, alen))
		tp_die("bind");
	alen = loopback(&a, AF_INET, port_of(r));
	if (connect(u, &a.sa, alen))
		tp_die("connect");
	setint(u, SOL_UDP, UDP_CORK, 1);
	send_all(u, "abc", 3);
	tp_ready();
	tp_wait_go();
	setint(u, SOL_UDP, UDP_CORK, 0);
	if (recv(r, buf, sizeof(buf), MSG_DONTWAIT) != 3 || memcmp(buf, "abc", 3))
		tp_fail("the corked datagram did not arrive");
	return tp_finish();
}

/* reset: connections reset by their peer with data unread, v4 and v6:
 * one with its error pending, one whose error a send took already; after
 * GO the data, then the error (the pending one only), then the end; a
 * send fails, and the name stays. */
struct reset_sk {
	int fd;
	bool error_taken;
	union addr name;
	socklen_t name_len;
};

/* The listener is kept (its port is the reset connection's) or closed. */
static int make_reset(struct reset_sk *r, bool take_error, bool keep_listener)
{
	int l = tcp_listener(2), c = tcp_connect(port_of(l));
	struct linger lg = {1, 0};

	r->fd = accept(l, NULL, NULL);
	if (r->fd < 0)
		tp_die("accept");
	if (!keep_listener) {
		close(l);
		l = -1;
	}
	send_all(c, "asd", 3);
	usleep(50000);
	/* linger 0: the close sends a RST */
	setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(c);
	usleep(50000);
	r->error_taken = take_error;
	if (take_error && (send(r->fd, "x", 1, MSG_NOSIGNAL) >= 0 || errno != ECONNRESET))
		tp_die("a send on the reset connection did not fail with ECONNRESET");
	r->name_len = sizeof(r->name);
	if (getsockname(r->fd, &r->name.sa, &r->name_len))
		tp_die("getsockname");
	return l;
}

static void check_reset(const struct reset_sk *r, const char *what)
{
	union addr name;
	socklen_t len = sizeof(name);
	char buf[8];

	if (getsockname(r->fd, &name.sa, &len) || len != r->name_len ||
	    memcmp(&name, &r->name, len))
		tp_fail("%s: its name changed", what);
	if (recv(r->fd, buf, sizeof(buf), MSG_DONTWAIT) != 3 || memcmp(buf, "asd", 3))
		tp_fail("%s: the data received before the reset is not there", what);
	if (!r->error_taken && (recv(r->fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0 ||
				errno != ECONNRESET))
		tp_fail("%s: no ECONNRESET after the data (%s)", what, strerror(errno));
	if (recv(r->fd, buf, sizeof(buf), MSG_DONTWAIT) != 0)
		tp_fail("%s: the socket does not read as ended after the reset", what);
	if (send(r->fd, "x", 1, MSG_NOSIGNAL) >= 0 || errno != EPIPE)
		tp_fail("%s: a send did not fail with EPIPE (%s)", what, strerror(errno));
	if (getpeername(r->fd, &name.sa, &len) == 0 || errno != ENOTCONN)
		tp_fail("%s: it has a peer again", what);
}

static int mode_reset(void)
{
	static const char *const what[] = {"v4, error pending", "v4, error taken",
					   "v6, error pending", "v6, error taken"};
	struct reset_sk r[4];
	int l = -1, c, a;
	char buf[8];

	/* the first keeps its listener, which shares its port */
	for (int i = 0; i < 4; i++) {
		family = i < 2 ? AF_INET : AF_INET6;
		if (i == 0)
			l = make_reset(&r[i], false, true);
		else
			make_reset(&r[i], i % 2, false);
	}
	tp_ready();
	tp_wait_go();
	if (tp_sabotaged("reset"))
		recv(r[0].fd, buf, 1, 0);
	for (int i = 0; i < 4; i++)
		check_reset(&r[i], what[i]);
	family = AF_INET;
	c = tcp_connect(port_of(l));
	a = accept(l, NULL, NULL);
	if (a < 0 || send(c, "q", 1, MSG_NOSIGNAL) != 1 || recv(a, buf, 1, 0) != 1)
		tp_fail("the listener of the reset connection's port does not take connections");
	return tp_finish();
}

static int mode_inflight(void)
{
	int l = tcp_listener(2);

	tcp_connect(port_of(l));
	remember(l, "listener");
	tp_ready();
	tp_wait_go();
	check_remembered();
	return tp_finish();
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if ((argc == 4 || argc == 5) && !strcmp(argv[1], "--client"))
		return client(argv[2], argv[3], argc == 5 ? argv[4] : NULL);
	tp_init(argc, argv, 2, "GOFILE tcp v4|v6|mapped|serve PORTFILE|opts|dgram|established|"
			       "closed|inflight");
	if (!strcmp(argv[2], "tcp") && argc > 3)
		return mode_tcp(argv[3], argc > 4 && !strcmp(argv[4], "big"));
	if (!strcmp(argv[2], "serve") && argc > 3)
		return mode_serve(argv[3], argc > 4 && !strcmp(argv[4], "mid"));
	if (!strcmp(argv[2], "opts"))
		return mode_opts();
	if (!strcmp(argv[2], "dgram"))
		return mode_dgram();
	if (!strcmp(argv[2], "established"))
		return mode_established(false);
	if (!strcmp(argv[2], "closed"))
		return mode_established(true);
	if (!strcmp(argv[2], "inflight"))
		return mode_inflight();
	if (!strcmp(argv[2], "reset"))
		return mode_reset();
	if (!strcmp(argv[2], "halfclosed"))
		return mode_halfclosed();
	if (!strcmp(argv[2], "connecting"))
		return mode_connecting();
	if (!strcmp(argv[2], "reuseport"))
		return mode_reuseport();
	if (!strcmp(argv[2], "corked"))
		return mode_corked();
	fprintf(stderr, "unknown mode %s\n", argv[2]);
	return 2;
}
