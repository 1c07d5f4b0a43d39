/*
 * Unix sockets across a checkpoint.
 *
 *   unixsk GOFILE kinds DIR      every kind, name and state in one process
 *   unixsk GOFILE listen PATH    a listener that accepts a client after GO
 *   unixsk GOFILE tree           socketpairs and a connection between a
 *                                parent and its child, data queued both ways,
 *                                SO_PEERCRED of the pair and both ends
 *   unixsk GOFILE unconn DIR     sockets not connected: never bound, bound
 *                                and idle, shut down, connected to itself,
 *                                bound in a removed directory, bound by a
 *                                relative name from another directory
 *   unixsk GOFILE external MODE  a socketpair whose other end is held outside
 *                                the tree (prints "INO n" and "OUTSIDE pid");
 *                                MODE says what GO should find: original,
 *                                disconnected or inherited
 *   unixsk GOFILE external dgram DIR  a datagram socket connected to a name
 *                                (DIR/ext) bound by a process outside the
 *                                tree (prints "INO n" and "OUTSIDE pid"); GO
 *                                sends it "ping" and expects "pong" back on a
 *                                second socket bound at DIR/reply
 *   unixsk GOFILE tcp|netlink    tcp: a socket stasis refuses (without
 *                                --tcp-established); netlink: one it carries
 *                                beside the unix ones (netsk.bats)
 *
 * Helpers for the suite (no GOFILE):
 *   unixsk --connect PATH        connect, send "hello", expect "welcome"
 *   unixsk --peer-exec N CMD...  run CMD with descriptor N one end of a
 *                                socketpair; the other end sends "from the
 *                                new peer" and answers "ping" with "pong"
 *
 * Queued data is checked message by message (length and bytes), so lost,
 * merged, split or reordered messages all fail.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <linux/netlink.h>

#include "testprog.h"

struct name {
	socklen_t len;
	struct sockaddr_un sa;
};

static char buf[1 << 20];

static void pattern(char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (char)tp_pattern(i, seed);
}

static void xsend(int fd, const void *data, size_t len)
{
	const char *p = data;

	do {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0)
			tp_die("send of %zu bytes on fd %d", len, fd);
		p += n;
		len -= n;
	} while (len);
}

static void xsendto(int fd, const void *data, size_t len, const struct name *to)
{
	if (sendto(fd, data, len, 0, (const struct sockaddr *)&to->sa, to->len) != (ssize_t)len)
		tp_die("sendto of %zu bytes on fd %d", len, fd);
}

static int xsocket(int type)
{
	int fd = socket(AF_UNIX, type, 0);

	if (fd < 0)
		tp_die("socket");
	return fd;
}

static void xpair(int type, int sv[2])
{
	if (socketpair(AF_UNIX, type, 0, sv))
		tp_die("socketpair");
}

static struct name abstract(const char *what)
{
	struct name n = {0};

	n.sa.sun_family = AF_UNIX;
	snprintf(n.sa.sun_path + 1, sizeof(n.sa.sun_path) - 1, "stasis-unixsk-%s-%d", what,
		 (int)getpid());
	n.len = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(n.sa.sun_path + 1);
	return n;
}

static struct name path(const char *p)
{
	struct name n = {0};

	n.sa.sun_family = AF_UNIX;
	snprintf(n.sa.sun_path, sizeof(n.sa.sun_path), "%s", p);
	n.len = offsetof(struct sockaddr_un, sun_path) + strlen(p) + 1;
	return n;
}

static void xbind(int fd, const struct name *n)
{
	if (bind(fd, (const struct sockaddr *)&n->sa, n->len))
		tp_die("bind %s", n->sa.sun_path[0] ? n->sa.sun_path : n->sa.sun_path + 1);
}

static int xconnect(int fd, const struct name *n)
{
	if (connect(fd, (const struct sockaddr *)&n->sa, n->len))
		tp_die("connect %s", n->sa.sun_path[0] ? n->sa.sun_path : n->sa.sun_path + 1);
	return fd;
}

static int xaccept(int fd)
{
	int s = accept(fd, NULL, NULL);

	if (s < 0)
		tp_die("accept");
	return s;
}

static const char *show(const struct name *n, char *out, size_t size)
{
	size_t plen = n->len > offsetof(struct sockaddr_un, sun_path)
			  ? n->len - offsetof(struct sockaddr_un, sun_path)
			  : 0;

	if (!plen)
		snprintf(out, size, "(unnamed)");
	else if (n->sa.sun_path[0])
		snprintf(out, size, "%s", n->sa.sun_path);
	else
		snprintf(out, size, "@%.*s", (int)plen - 1, n->sa.sun_path + 1);
	return out;
}

static bool same_name(const struct name *a, const struct name *b)
{
	socklen_t none = offsetof(struct sockaddr_un, sun_path);

	if (a->len <= none || b->len <= none) /* unnamed: 0 or just the family */
		return a->len <= none && b->len <= none;
	return a->len == b->len && !memcmp(a->sa.sun_path, b->sa.sun_path,
					   a->len - offsetof(struct sockaddr_un, sun_path));
}

static struct name sockname(int fd, bool peer)
{
	struct name n = {.len = sizeof(n.sa)};

	if ((peer ? getpeername : getsockname)(fd, (struct sockaddr *)&n.sa, &n.len))
		n.len = 0;
	return n;
}

static void check_name(const char *what, int fd, bool peer, const struct name *want)
{
	struct name got = sockname(fd, peer);
	char a[128], b[128];

	if (!same_name(&got, want))
		tp_fail("%s: %s is %s, expected %s", what, peer ? "peer name" : "name",
			show(&got, a, sizeof(a)), show(want, b, sizeof(b)));
}

/* Waits up to 2 s for something to read on fd. */
static bool readable(int fd)
{
	struct pollfd p = {fd, POLLIN, 0};

	return poll(&p, 1, 2000) == 1;
}

/* The next message on fd must be exactly len bytes of data (from: the
 * sender's name, when given). */
static void expect_msg(int fd, const char *what, const void *data, size_t len,
		       const struct name *from)
{
	struct name got = {.len = sizeof(got.sa)};
	ssize_t n;
	char a[128], b[128];

	if (!readable(fd)) {
		tp_fail("%s: nothing to read (expected %zu bytes)", what, len);
		return;
	}
	n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&got.sa,
		     &got.len);
	if (n < 0)
		tp_fail("%s: recv: %s", what, strerror(errno));
	else if ((size_t)n != len)
		tp_fail("%s: a message of %zd bytes, expected %zu", what, n, len);
	else if (memcmp(buf, data, len))
		tp_fail("%s: the message's bytes differ", what);
	else if (from && !same_name(&got, from))
		tp_fail("%s: sent by %s, expected %s", what, show(&got, a, sizeof(a)),
			show(from, b, sizeof(b)));
}

/* Exactly len bytes of data must come next on stream fd. */
static void expect_stream(int fd, const char *what, const void *data, size_t len)
{
	size_t got = 0;

	while (got < len && readable(fd)) {
		ssize_t n = recv(fd, buf + got, len - got, MSG_DONTWAIT);

		if (n <= 0)
			break;
		got += n;
	}
	if (got != len)
		tp_fail("%s: read %zu bytes, expected %zu", what, got, len);
	else if (memcmp(buf, data, len))
		tp_fail("%s: the bytes differ", what);
}

static void expect_empty(int fd, const char *what)
{
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n >= 0 || errno != EAGAIN)
		tp_fail("%s: expected an empty queue, recv gave %zd (%s)", what, n,
			n < 0 ? strerror(errno) : "data");
}

static void expect_eof(int fd, const char *what)
{
	ssize_t n = readable(fd) ? recv(fd, buf, sizeof(buf), MSG_DONTWAIT) : -2;

	if (n != 0)
		tp_fail("%s: expected end of file, recv gave %zd", what, n);
}

static void expect_epipe(int fd, const char *what)
{
	if (send(fd, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0 ||
	    (errno != EPIPE && errno != ECONNREFUSED && errno != ENOTCONN))
		tp_fail("%s: sending should fail (peer gone or shut down), errno %d", what, errno);
}

/* The descriptor's options that must survive. */
struct opts {
	int type, sndbuf, rcvbuf, passcred, peekoff, acceptconn, fl;
	struct timeval rcvtimeo;
};

static struct opts get_opts(int fd)
{
	struct opts o = {0};
	socklen_t l;

#define GET(opt, field)                                                                            \
	l = sizeof(o.field);                                                                       \
	getsockopt(fd, SOL_SOCKET, opt, &o.field, &l)
	GET(SO_TYPE, type);
	GET(SO_SNDBUF, sndbuf);
	GET(SO_RCVBUF, rcvbuf);
	GET(SO_PASSCRED, passcred);
	GET(SO_PEEK_OFF, peekoff);
	GET(SO_ACCEPTCONN, acceptconn);
	GET(SO_RCVTIMEO, rcvtimeo);
#undef GET
	o.fl = fcntl(fd, F_GETFL) & (O_NONBLOCK | O_ACCMODE);
	return o;
}

static void check_opts(const char *what, int fd, const struct opts *want)
{
	struct opts o = get_opts(fd);

#define CMP(field)                                                                                 \
	if (o.field != want->field)                                                                \
	tp_fail("%s: " #field " is %d, was %d", what, (int)o.field, (int)want->field)
	CMP(type);
	CMP(sndbuf);
	CMP(rcvbuf);
	CMP(passcred);
	CMP(peekoff);
	CMP(acceptconn);
	CMP(fl);
	CMP(rcvtimeo.tv_sec);
	CMP(rcvtimeo.tv_usec);
#undef CMP
}

/* ---------------------------------------------------------------- kinds */

#define NSOCK 32
static int fds[NSOCK];
static struct opts saved[NSOCK];
static const char *names[NSOCK];
static int nfds;

static int keep(const char *what, int fd)
{
	names[nfds] = what;
	fds[nfds++] = fd;
	return fd;
}

static int kinds(const char *dir)
{
	static char big[300000], d3[3000], q2[2000];
	int sp[2], dp[2], qp[2], op[2], o2[2], r, a, b, l, c1, s1, c2, p, x, r2, g, k;
	struct name rname, bname, cname, lname, pname, r2name, gname, kname, kabs;
	int cl;
	char tmp[4096];
	struct stat pst;
	int v;

	pattern(big, sizeof(big), 1);
	pattern(d3, sizeof(d3), 2);
	pattern(q2, sizeof(q2), 3);

	/* a. stream pair, data both ways, more than one piece of it */
	xpair(SOCK_STREAM, sp);
	v = 400000;
	setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	xsend(sp[0], "stream one;", 11);
	xsend(sp[0], "stream two;", 11);
	fcntl(sp[0], F_SETFL, O_NONBLOCK);
	xsend(sp[0], big, sizeof(big));
	fcntl(sp[0], F_SETFL, 0);
	xsend(sp[1], "stream back", 11);
	keep("stream pair end 0", sp[0]);
	keep("stream pair end 1", sp[1]);

	/* b. datagram pair: boundaries, an empty message, a big one */
	xpair(SOCK_DGRAM, dp);
	xsend(dp[0], "dgram one", 9);
	if (send(dp[0], "", 0, 0))
		tp_die("empty datagram");
	xsend(dp[0], d3, sizeof(d3));
	xsend(dp[0], "x", 1);
	xsend(dp[1], "dgram back", 10);
	keep("datagram pair end 0", dp[0]);
	keep("datagram pair end 1", dp[1]);

	/* c. seqpacket pair, one end shut down for writing */
	xpair(SOCK_SEQPACKET, qp);
	xsend(qp[0], "seq one", 7);
	xsend(qp[0], q2, sizeof(q2));
	xsend(qp[0], "seq three", 9);
	if (shutdown(qp[1], SHUT_WR))
		tp_die("shutdown");
	keep("seqpacket end 0", qp[0]);
	keep("seqpacket end 1", qp[1]);

	/* d. a datagram socket bound to a path, sent to by an unnamed socket
	 * and by one bound to an abstract name */
	snprintf(tmp, sizeof(tmp), "%s/dgram.sock", dir);
	rname = path(tmp);
	r = xsocket(SOCK_DGRAM);
	xbind(r, &rname);
	a = xsocket(SOCK_DGRAM);
	b = xsocket(SOCK_DGRAM);
	bname = abstract("B");
	xbind(b, &bname);
	xsendto(a, "from A 1", 8, &rname);
	xsendto(b, "from B", 6, &rname);
	xsendto(a, "from A 2", 8, &rname);
	/* a sender closed since: the message still names it */
	cname = abstract("C");
	cl = xsocket(SOCK_DGRAM);
	xbind(cl, &cname);
	xsendto(cl, "from closed C", 13, &rname);
	close(cl);
	keep("bound datagram socket", r);
	keep("unnamed sender", a);
	keep("named sender", b);

	/* e. abstract listener: one connection accepted (data both ways, the
	 * client shut down for writing), one not accepted yet */
	lname = abstract("L");
	l = xsocket(SOCK_STREAM);
	xbind(l, &lname);
	if (listen(l, 7))
		tp_die("listen");
	c1 = xconnect(xsocket(SOCK_STREAM), &lname);
	s1 = xaccept(l);
	xsend(c1, "to server", 9);
	shutdown(c1, SHUT_WR);
	xsend(s1, "to client", 9);
	c2 = xconnect(xsocket(SOCK_STREAM), &lname);
	keep("abstract listener", l);
	keep("accepted client", c1);
	keep("accepted server side", s1);
	keep("pending client", c2);

	/* f. listener on a path, socket file mode 0600 */
	snprintf(tmp, sizeof(tmp), "%s/listen.sock", dir);
	pname = path(tmp);
	p = xsocket(SOCK_STREAM);
	xbind(p, &pname);
	if (listen(p, 3) || chmod(tmp, 0600) || stat(tmp, &pst))
		tp_die("listen on %s", tmp);
	keep("path listener", p);

	/* g. an unnamed datagram socket connected to a bound one */
	r2name = abstract("R2");
	r2 = xsocket(SOCK_DGRAM);
	xbind(r2, &r2name);
	x = xconnect(xsocket(SOCK_DGRAM), &r2name);
	xsend(x, "one-way 1", 9);
	keep("datagram receiver", r2);
	keep("connected datagram socket", x);

	/* h. options, and a peek offset moved by the task itself */
	xpair(SOCK_STREAM, o2);
	v = 50000;
	setsockopt(o2[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	v = 40000;
	setsockopt(o2[0], SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
	fcntl(o2[0], F_SETFL, O_NONBLOCK);
	v = 1;
	setsockopt(o2[1], SOL_SOCKET, SO_PASSCRED, &v, sizeof(v));
	{
		struct timeval tv = {2, 500000};

		setsockopt(o2[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	v = 0;
	setsockopt(o2[1], SOL_SOCKET, SO_PEEK_OFF, &v, sizeof(v));
	xsend(o2[0], "peek", 4);
	if (recv(o2[1], tmp, 2, MSG_PEEK) != 2) /* the offset is now 2 */
		tp_die("peek");
	keep("options end 0", o2[0]);
	keep("options end 1", o2[1]);

	/* i. a stream socket whose peer wrote and closed */
	xpair(SOCK_STREAM, op);
	xsend(op[1], "last words", 10);
	close(op[1]);
	keep("orphan", op[0]);

	/* j. a path name whose file is gone */
	snprintf(tmp, sizeof(tmp), "%s/gone.sock", dir);
	gname = path(tmp);
	g = xsocket(SOCK_DGRAM);
	xbind(g, &gname);
	unlink(tmp);
	keep("deleted name", g);

	/* k. a relative path name */
	if (chdir(dir))
		tp_die("chdir %s", dir);
	kname = path("rel.sock");
	snprintf(tmp, sizeof(tmp), "%s/rel.sock", dir);
	kabs = path(tmp);
	k = xsocket(SOCK_STREAM);
	xbind(k, &kname);
	if (listen(k, 1))
		tp_die("listen rel.sock");
	keep("relative listener", k);

	for (int i = 0; i < nfds; i++)
		saved[i] = get_opts(fds[i]);
	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("queue"))
		recv(dp[1], tmp, sizeof(tmp), MSG_DONTWAIT);
	for (int i = 0; i < nfds; i++)
		check_opts(names[i], fds[i], &saved[i]);

	/* a */
	expect_stream(sp[1], "stream pair", "stream one;stream two;", 22);
	expect_stream(sp[1], "stream pair (300000 bytes)", big, sizeof(big));
	expect_empty(sp[1], "stream pair");
	expect_stream(sp[0], "stream pair (back)", "stream back", 11);
	xsend(sp[0], "after", 5);
	expect_stream(sp[1], "stream pair after restore", "after", 5);

	/* b */
	expect_msg(dp[1], "datagram 1", "dgram one", 9, NULL);
	expect_msg(dp[1], "datagram 2 (empty)", "", 0, NULL);
	expect_msg(dp[1], "datagram 3 (3000 bytes)", d3, sizeof(d3), NULL);
	expect_msg(dp[1], "datagram 4", "x", 1, NULL);
	expect_empty(dp[1], "datagram pair");
	expect_msg(dp[0], "datagram back", "dgram back", 10, NULL);
	xsend(dp[1], "new", 3);
	expect_msg(dp[0], "datagram pair after restore", "new", 3, NULL);

	/* c */
	expect_msg(qp[1], "seqpacket 1", "seq one", 7, NULL);
	expect_msg(qp[1], "seqpacket 2 (2000 bytes)", q2, sizeof(q2), NULL);
	expect_msg(qp[1], "seqpacket 3", "seq three", 9, NULL);
	expect_eof(qp[0], "seqpacket end 0 (peer shut down for writing)");
	xsend(qp[0], "after", 5);
	expect_msg(qp[1], "seqpacket after restore", "after", 5, NULL);
	expect_epipe(qp[1], "seqpacket end 1 (shut down for writing)");

	/* d */
	check_name("bound datagram socket", r, false, &rname);
	check_name("named sender", b, false, &bname);
	{
		struct name unnamed = {.len = offsetof(struct sockaddr_un, sun_path)};

		expect_msg(r, "bound datagram 1", "from A 1", 8, &unnamed);
		expect_msg(r, "bound datagram 2", "from B", 6, &bname);
		expect_msg(r, "bound datagram 3", "from A 2", 8, &unnamed);
		expect_msg(r, "bound datagram 4 (its sender closed)", "from closed C", 13, &cname);
	}
	expect_empty(r, "bound datagram socket");
	xsendto(a, "new", 3, &rname);
	expect_msg(r, "bound datagram after restore", "new", 3, NULL);

	/* e */
	check_name("abstract listener", l, false, &lname);
	check_name("accepted server side", s1, false, &lname);
	check_name("accepted client", c1, true, &lname);
	check_name("pending client", c2, true, &lname);
	expect_stream(s1, "accepted server side", "to server", 9);
	expect_eof(s1, "accepted server side (client shut down for writing)");
	expect_stream(c1, "accepted client", "to client", 9);
	xsend(s1, "more", 4);
	expect_stream(c1, "accepted client after restore", "more", 4);
	fcntl(l, F_SETFL, O_NONBLOCK);
	{
		int s2 = accept(l, NULL, NULL), c3, s3;

		if (s2 < 0) {
			tp_fail("abstract listener: the pending connection is gone (%s)",
				strerror(errno));
		} else {
			xsend(c2, "late", 4);
			expect_stream(s2, "pending connection, accepted after restore", "late", 4);
		}
		if (accept(l, NULL, NULL) >= 0 || errno != EAGAIN)
			tp_fail("abstract listener: more than one pending connection");
		c3 = xconnect(xsocket(SOCK_STREAM), &lname);
		s3 = accept(l, NULL, NULL);
		if (s3 < 0) {
			tp_fail("abstract listener: no new connection (%s)", strerror(errno));
		} else {
			xsend(c3, "new", 3);
			expect_stream(s3, "new connection after restore", "new", 3);
		}
	}

	/* f */
	check_name("path listener", p, false, &pname);
	{
		struct stat st;
		int c, s;

		if (stat(pname.sa.sun_path, &st) || !S_ISSOCK(st.st_mode))
			tp_fail("path listener: %s is not a socket file", pname.sa.sun_path);
		else if ((st.st_mode & 07777) != (pst.st_mode & 07777))
			tp_fail("path listener: the socket file's mode is %o, was %o",
				st.st_mode & 07777, pst.st_mode & 07777);
		c = xconnect(xsocket(SOCK_STREAM), &pname);
		s = xaccept(p);
		xsend(s, "hi", 2);
		expect_stream(c, "path listener connection", "hi", 2);
	}

	/* g */
	check_name("connected datagram socket", x, true, &r2name);
	expect_msg(r2, "one-way datagram", "one-way 1", 9, NULL);
	xsend(x, "one-way 2", 9);
	expect_msg(r2, "one-way datagram after restore", "one-way 2", 9, NULL);

	/* h: the peek offset is 2, then a read takes all and resets it */
	{
		if (recv(o2[1], tmp, 4, MSG_PEEK | MSG_DONTWAIT) != 2 || memcmp(tmp, "ek", 2))
			tp_fail("options end 1: a peek does not start at the peek offset 2");
		expect_stream(o2[1], "options pair", "peek", 4);
	}

	/* i */
	expect_stream(op[0], "orphan", "last words", 10);
	expect_eof(op[0], "orphan (peer closed)");
	expect_epipe(op[0], "orphan");

	/* j */
	check_name("deleted name", g, false, &gname);
	if (!access(gname.sa.sun_path, F_OK))
		tp_fail("deleted name: %s exists again", gname.sa.sun_path);

	/* k */
	check_name("relative listener", k, false, &kname);
	{
		int c = xconnect(xsocket(SOCK_STREAM), &kabs), s = xaccept(k);

		xsend(c, "rel", 3);
		expect_stream(s, "relative listener connection", "rel", 3);
	}
	return tp_finish();
}

/* --------------------------------------------------------------- listen */

static int listen_mode(const char *p)
{
	struct name n = path(p);
	int l = xsocket(SOCK_STREAM), s;
	char msg[64];
	ssize_t got;

	unlink(p);
	xbind(l, &n);
	if (listen(l, 5))
		tp_die("listen");
	tp_ready();
	tp_wait_go();
	if (!readable(l) && !readable(l) && !readable(l) && !readable(l) && !readable(l)) {
		tp_fail("no client connected within 10 s of GO");
		return tp_finish();
	}
	s = xaccept(l);
	readable(s);
	got = recv(s, msg, sizeof(msg), 0);
	if (got != 5 || memcmp(msg, "hello", 5))
		tp_fail("the client said %zd bytes, expected \"hello\"", got);
	xsend(s, "welcome", 7);
	return tp_finish();
}

static int connect_mode(const char *p)
{
	struct name n = path(p);
	int c = xsocket(SOCK_STREAM);
	char msg[64];

	if (connect(c, (struct sockaddr *)&n.sa, n.len)) {
		fprintf(stderr, "connect %s: %s\n", p, strerror(errno));
		return 1;
	}
	xsend(c, "hello", 5);
	if (!readable(c) || recv(c, msg, sizeof(msg), 0) != 7 || memcmp(msg, "welcome", 7)) {
		fprintf(stderr, "no welcome from %s\n", p);
		return 1;
	}
	return 0;
}

/* ----------------------------------------------------------------- tree */

/* SO_PEERCRED of fd must name pid (with this task's uid and gid). */
static void expect_peercred(const char *what, int fd, pid_t pid)
{
	struct ucred cr = {0};
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len))
		tp_fail("%s: SO_PEERCRED: %s", what, strerror(errno));
	else if (cr.pid != pid || cr.uid != getuid() || cr.gid != getgid())
		tp_fail("%s: SO_PEERCRED pid %d uid %u gid %u, expected pid %d", what, cr.pid,
			cr.uid, cr.gid, pid);
}

static int tree_mode(void)
{
	int sp[2], dp[2], l, s, c, status;
	struct name lname = abstract("T");
	char msg[256];
	pid_t child;
	int avail = 0;

	xpair(SOCK_STREAM, sp);
	xpair(SOCK_DGRAM, dp);
	l = xsocket(SOCK_STREAM);
	xbind(l, &lname);
	if (listen(l, 4))
		tp_die("listen");
	child = fork();
	if (child < 0)
		tp_die("fork");
	if (child == 0) {
		close(sp[0]);
		close(dp[0]);
		close(l);
		c = xconnect(xsocket(SOCK_STREAM), &lname);
		xsend(dp[1], "c->p d1", 7);
		xsend(dp[1], "c->p d2", 7);
		xsend(c, "via listener", 12);
		xsend(sp[1], "c->p stream", 11);
		tp_wait_go();
		/* a client's SO_PEERCRED names who listened */
		expect_peercred("child: client of the parent's listener", c, getppid());
		expect_stream(sp[1], "child: stream pair", "p->c stream", 11);
		expect_msg(dp[1], "child: datagram pair", "p->c d", 6, NULL);
		expect_stream(c, "child: accepted connection", "reply via listener", 18);
		snprintf(msg, sizeof(msg), "%s%.200s", tp_nfail ? "child FAIL: " : "child ok",
			 tp_nfail ? tp_fails : "");
		xsend(sp[1], msg, strlen(msg));
		xsend(c, "child bye", 9);
		_exit(tp_nfail ? 1 : 0);
	}
	close(sp[1]);
	close(dp[1]);
	s = xaccept(l);
	xsend(sp[0], "p->c stream", 11);
	xsend(dp[0], "p->c d", 6);
	xsend(s, "reply via listener", 18);
	/* ready once the child's last message is queued (not read) */
	for (int i = 0; i < 500 && avail < 11; i++) {
		usleep(10000);
		if (recv(sp[0], msg, sizeof(msg), MSG_PEEK | MSG_DONTWAIT) > 0)
			avail = recv(sp[0], msg, sizeof(msg), MSG_PEEK | MSG_DONTWAIT);
	}
	if (avail != 11)
		tp_die("the child did not write");
	tp_ready();
	tp_wait_go();
	if (tp_sabotaged("peercred")) {
		int np[2];

		xpair(SOCK_STREAM, np);
		dup2(np[0], s);
	}
	expect_peercred("parent: its stream pair", sp[0], getpid());
	expect_peercred("parent: accepted connection", s, child);
	expect_stream(sp[0], "parent: stream pair", "c->p stream", 11);
	expect_msg(dp[0], "parent: datagram 1", "c->p d1", 7, NULL);
	expect_msg(dp[0], "parent: datagram 2", "c->p d2", 7, NULL);
	expect_stream(s, "parent: accepted connection", "via listener", 12);
	/* then both still talk */
	if (!readable(sp[0]) || recv(sp[0], msg, sizeof(msg) - 1, 0) <= 0)
		tp_fail("parent: no report from the child");
	else if (strncmp(msg, "child ok", 8))
		tp_fail("%.200s", msg);
	expect_stream(s, "parent: accepted connection after restore", "child bye", 9);
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status))
		tp_fail("the child ended with status 0x%x", status);
	return tp_finish();
}

/* ------------------------------------------------------------- external */

/* A datagram socket connected to a name that a process outside the tree
 * holds: restored, it must be connected to that name again (--ext-unix-sk). */
static int external_dgram(const char *dir)
{
	char p[200], link[64], path_[64], msg[16];
	struct name ext, reply, got = {.len = sizeof(got.sa)};
	int c, r, ready[2];
	pid_t outside;
	struct pollfd pfd;
	ssize_t n;

	snprintf(p, sizeof(p), "%s/ext", dir);
	ext = path(p);
	snprintf(p, sizeof(p), "%s/reply", dir);
	reply = path(p);
	if (pipe(ready))
		tp_die("pipe");
	/* a grandchild, re-parented away: not part of the tree dumped */
	if (fork() == 0) {
		if (fork() == 0) {
			int s = xsocket(SOCK_DGRAM);
			pid_t me = getpid();

			close(ready[0]);
			setsid();
			alarm(120);
			xbind(s, &ext);
			if (write(ready[1], &me, sizeof(me)) != sizeof(me))
				_exit(1);
			close(ready[1]);
			/* answer every ping on the reply name until killed */
			while ((n = recv(s, msg, sizeof(msg), 0)) > 0)
				if (n == 4 && !memcmp(msg, "ping", 4))
					sendto(s, "pong", 4, 0, (struct sockaddr *)&reply.sa,
					       reply.len);
			_exit(0);
		}
		_exit(0);
	}
	close(ready[1]);
	wait(NULL);
	if (read(ready[0], &outside, sizeof(outside)) != sizeof(outside))
		tp_die("the outside process did not bind %s", ext.sa.sun_path);
	close(ready[0]);
	r = xsocket(SOCK_DGRAM);
	xbind(r, &reply);
	c = xconnect(xsocket(SOCK_DGRAM), &ext);
	snprintf(path_, sizeof(path_), "/proc/self/fd/%d", c);
	n = readlink(path_, link, sizeof(link) - 1);
	link[n > 0 ? n - 1 : 0] = 0; /* socket:[N] */
	printf("INO %s\nOUTSIDE %d\n", link + 8, (int)outside);
	tp_ready();
	tp_wait_go();
	if (tp_sabotaged("extdgram")) {
		struct sockaddr sa = {.sa_family = AF_UNSPEC};

		connect(c, &sa, sizeof(sa));
	}
	if (getpeername(c, (struct sockaddr *)&got.sa, &got.len) || !same_name(&got, &ext)) {
		tp_fail("the datagram socket is not connected to %s any more", ext.sa.sun_path);
		return tp_finish();
	}
	if (send(c, "ping", 4, 0) != 4) {
		tp_fail("send to the outside peer: %s", strerror(errno));
		return tp_finish();
	}
	pfd = (struct pollfd){.fd = r, .events = POLLIN};
	if (poll(&pfd, 1, 30000) != 1)
		tp_fail("no answer from the outside peer");
	else
		expect_msg(r, "answer from the outside peer", "pong", 4, &ext);
	return tp_finish();
}

static int external_mode(const char *mode)
{
	int sp[2];
	pid_t mid, outside;
	char link[64], path_[64], msg[64];
	int fdpipe[2];
	ssize_t n;

	xpair(SOCK_STREAM, sp);
	/* the other end goes to a grandchild that leaves the tree */
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, fdpipe))
		tp_die("socketpair");
	mid = fork();
	if (mid == 0) {
		if (fork() == 0) {
			close(sp[0]);
			close(fdpipe[0]);
			setsid(); /* its own session: the tree's PID must be free once dumped */
			alarm(120);
			xsend(sp[1], "from outside", 12);
			{
				pid_t me = getpid();

				xsend(fdpipe[1], &me, sizeof(me));
			}
			close(fdpipe[1]);
			/* answer ping with pong until the peer is gone */
			while ((n = recv(sp[1], msg, sizeof(msg), 0)) > 0)
				if (n == 4 && !memcmp(msg, "ping", 4))
					xsend(sp[1], "pong", 4);
			_exit(0);
		}
		_exit(0);
	}
	close(sp[1]);
	close(fdpipe[1]);
	waitpid(mid, NULL, 0);
	if (recv(fdpipe[0], &outside, sizeof(outside), MSG_WAITALL) != sizeof(outside))
		tp_die("no word from the outside process");
	close(fdpipe[0]);
	/* its message is queued on sp[0] before READY */
	for (int i = 0; i < 500; i++) {
		if (recv(sp[0], msg, sizeof(msg), MSG_PEEK | MSG_DONTWAIT) == 12)
			break;
		usleep(10000);
	}
	snprintf(path_, sizeof(path_), "/proc/self/fd/%d", sp[0]);
	n = readlink(path_, link, sizeof(link) - 1);
	link[n > 0 ? n - 1 : 0] = 0; /* socket:[N] */
	printf("INO %s\nFD %d\nOUTSIDE %d\n", link + 8, sp[0], (int)outside);
	tp_ready();
	tp_wait_go();
	if (!strcmp(mode, "inherited")) {
		expect_stream(sp[0], "inherited socket", "from the new peer", 17);
	} else {
		expect_stream(sp[0], "queued data from outside", "from outside", 12);
	}
	if (!strcmp(mode, "disconnected")) {
		expect_eof(sp[0], "disconnected socket");
		expect_epipe(sp[0], "disconnected socket");
	} else {
		xsend(sp[0], "ping", 4);
		expect_stream(sp[0], "answer from the peer", "pong", 4);
	}
	return tp_finish();
}

static int peer_exec(int n, char **cmd)
{
	int sv[2];
	pid_t pid;

	xpair(SOCK_STREAM, sv);
	pid = fork();
	if (pid == 0) {
		char msg[64];
		ssize_t got;

		close(sv[0]);
		alarm(120);
		xsend(sv[1], "from the new peer", 17);
		while ((got = recv(sv[1], msg, sizeof(msg), 0)) > 0)
			if (got == 4 && !memcmp(msg, "ping", 4))
				xsend(sv[1], "pong", 4);
		_exit(0);
	}
	close(sv[1]);
	if (dup2(sv[0], n) < 0)
		tp_die("dup2");
	if (sv[0] != n)
		close(sv[0]);
	execvp(cmd[0], cmd);
	tp_die("exec %s", cmd[0]);
}

/* ---------------------------------------------------------- unsupported */

static int unsupported(const char *what)
{
	int fd, c = -1, s = -1;

	if (!strcmp(what, "tcp")) {
		struct sockaddr_in in = {.sin_family = AF_INET};
		socklen_t len = sizeof(in);

		in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&in, sizeof(in)) || listen(fd, 1) ||
		    getsockname(fd, (struct sockaddr *)&in, &len))
			tp_die("tcp listener");
		c = socket(AF_INET, SOCK_STREAM, 0);
		if (c < 0 || connect(c, (struct sockaddr *)&in, sizeof(in)))
			tp_die("tcp connect");
		s = xaccept(fd);
	} else {
		struct sockaddr_nl nl = {.nl_family = AF_NETLINK};

		fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
		if (fd < 0 || bind(fd, (struct sockaddr *)&nl, sizeof(nl)))
			tp_die("netlink socket");
	}
	tp_ready();
	tp_wait_go();
	if (c >= 0) {
		xsend(c, "tcp", 3);
		expect_stream(s, "tcp connection", "tcp", 3);
	}
	return tp_finish();
}

/* ---------------------------------------------------------------- unconn */

/* A socket of TYPE that can still connect to a fresh listener of that type. */
static void check_can_connect(const char *what, int fd, int type)
{
	struct name n = abstract("fresh");
	int l = xsocket(type), s;

	xbind(l, &n);
	if (listen(l, 1))
		tp_die("listen");
	if (connect(fd, (const struct sockaddr *)&n.sa, n.len)) {
		tp_fail("%s: cannot connect to a new listener: %s", what, strerror(errno));
	} else if ((s = accept(l, NULL, NULL)) < 0) {
		tp_fail("%s: its connection is not accepted: %s", what, strerror(errno));
	} else {
		xsend(fd, "hi", 2);
		expect_msg(s, what, "hi", 2, NULL);
		close(s);
	}
	close(l);
}

/* Bound, not listening: refuses connections until it listens. */
static void check_bound_idle(const char *what, int fd, int type, const struct name *n)
{
	int c = xsocket(type), s;

	check_name(what, fd, false, n);
	if (!connect(c, (const struct sockaddr *)&n->sa, n->len) || errno != ECONNREFUSED)
		tp_fail("%s: a connection before listen() should be refused (errno %d)", what,
			errno);
	close(c);
	if (listen(fd, 1)) {
		tp_fail("%s: listen: %s", what, strerror(errno));
		return;
	}
	c = xconnect(xsocket(type), n);
	s = accept(fd, NULL, NULL);
	if (s < 0)
		tp_fail("%s: accept after listen: %s", what, strerror(errno));
	else
		close(s);
	close(c);
}

/*
 * Sockets that are not connected: never bound (stream, seqpacket), bound
 * but not listening, a datagram socket shut down for reading, a datagram
 * socket connected to itself with a message to itself queued, a datagram
 * socket whose name's directory was removed, and a listener bound by a
 * relative name from the working directory of a child, held by the parent
 * whose working directory is another.
 */
static int unconn_mode(const char *dir)
{
	int st = xsocket(SOCK_STREAM), sq = xsocket(SOCK_SEQPACKET);
	int bst = xsocket(SOCK_STREAM), bsq = xsocket(SOCK_SEQPACKET);
	int shut = xsocket(SOCK_DGRAM), self = xsocket(SOCK_DGRAM), gone = xsocket(SOCK_DGRAM);
	int rel = xsocket(SOCK_STREAM), ready[2], v = 0;
	struct name nbst, nbsq, nself, ngone, nrel, nrelabs;
	char tmp[8192], sub[4096], gdir[4096];
	struct stat sb;
	socklen_t vl = sizeof(v);
	pid_t child;
	char c;

	snprintf(tmp, sizeof(tmp), "%s/bound-stream.sock", dir);
	nbst = path(tmp);
	xbind(bst, &nbst);
	snprintf(tmp, sizeof(tmp), "%s/bound-seqpacket.sock", dir);
	nbsq = path(tmp);
	xbind(bsq, &nbsq);
	if (shutdown(shut, SHUT_RD))
		tp_die("shutdown");
	snprintf(tmp, sizeof(tmp), "%s/self.sock", dir);
	nself = path(tmp);
	xbind(self, &nself);
	xconnect(self, &nself);
	xsend(self, "to myself", 9);
	snprintf(gdir, sizeof(gdir), "%s/gone", dir);
	snprintf(tmp, sizeof(tmp), "%s/gone/dgram.sock", dir);
	ngone = path(tmp);
	if (mkdir(gdir, 0755))
		tp_die("mkdir %s", gdir);
	xbind(gone, &ngone);
	if (unlink(tmp) || rmdir(gdir))
		tp_die("rmdir %s", gdir);
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	if (mkdir(sub, 0755) || pipe(ready))
		tp_die("mkdir %s", sub);
	nrel = path("rel.sock");
	snprintf(tmp, sizeof(tmp), "%s/rel.sock", sub);
	nrelabs = path(tmp);
	child = fork();
	if (child < 0)
		tp_die("fork");
	if (!child) {
		if (chdir(sub) || bind(rel, (struct sockaddr *)&nrel.sa, nrel.len) || listen(rel, 2))
			_exit(1);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	if (read(ready[0], &c, 1) != 1)
		tp_die("the child did not bind rel.sock");
	if (chdir(dir))
		tp_die("chdir %s", dir);

	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("unconn"))
		recv(self, tmp, sizeof(tmp), MSG_DONTWAIT);
	check_can_connect("never bound stream socket", st, SOCK_STREAM);
	check_can_connect("never bound seqpacket socket", sq, SOCK_SEQPACKET);
	check_bound_idle("bound stream socket", bst, SOCK_STREAM, &nbst);
	check_bound_idle("bound seqpacket socket", bsq, SOCK_SEQPACKET, &nbsq);
	{
		/* a blocking recv sees the shutdown at once (MSG_DONTWAIT would not) */
		struct timeval tv = {0, 300000};

		setsockopt(shut, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (recv(shut, tmp, sizeof(tmp), 0) != 0)
			tp_fail("datagram socket shut down for reading: recv should give end "
				"of file");
	}
	expect_msg(self, "datagram socket connected to itself", "to myself", 9, &nself);
	check_name("datagram socket connected to itself", self, true, &nself);
	xsend(self, "again", 5);
	expect_msg(self, "datagram socket connected to itself (after)", "again", 5, &nself);
	check_name("socket bound in a removed directory", gone, false, &ngone);
	if (!stat(gdir, &sb) || errno != ENOENT)
		tp_fail("the removed directory %s is there again", gdir);
	check_name("listener bound by a relative name", rel, false, &nrel);
	getsockopt(rel, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl);
	if (!v)
		tp_fail("listener bound by a relative name: not listening");
	else {
		int cl = xconnect(xsocket(SOCK_STREAM), &nrelabs), s = accept(rel, NULL, NULL);

		if (s < 0)
			tp_fail("listener bound by a relative name: accept: %s", strerror(errno));
		else
			close(s);
		close(cl);
	}
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return tp_finish();
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "--connect"))
		return connect_mode(argv[2]);
	if (argc >= 4 && !strcmp(argv[1], "--peer-exec"))
		return peer_exec(atoi(argv[2]), argv + 3);
	tp_init(argc, argv, 2, "GOFILE kinds DIR|listen PATH|tree|unconn DIR|external MODE|tcp|netlink");
	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(argv[2], "kinds") && argc > 3)
		return kinds(argv[3]);
	if (!strcmp(argv[2], "listen") && argc > 3)
		return listen_mode(argv[3]);
	if (!strcmp(argv[2], "tree"))
		return tree_mode();
	if (!strcmp(argv[2], "unconn") && argc > 3)
		return unconn_mode(argv[3]);
	if (!strcmp(argv[2], "external") && argc > 4 && !strcmp(argv[3], "dgram"))
		return external_dgram(argv[4]);
	if (!strcmp(argv[2], "external") && argc > 3)
		return external_mode(argv[3]);
	if (!strcmp(argv[2], "tcp") || !strcmp(argv[2], "netlink"))
		return unsupported(argv[2]);
	fprintf(stderr, "unknown mode %s\n", argv[2]);
	return 2;
}
