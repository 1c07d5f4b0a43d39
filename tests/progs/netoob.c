/*
 * netoob GOFILE: TCP urgent data (MSG_OOB) queued at the checkpoint, over
 * IPv4 and IPv6 loopback, each case on its own connection (a client and
 * the connection its listener accepted, both in this process):
 *
 *   pending   "abc" OOB 'X' "def" unread by the client
 *   reverse   the same towards the accepted side: "st" OOB 'V' "uv"
 *   read      "gh" OOB 'Y' "ij", the urgent byte taken with MSG_OOB
 *   atmark    "kl" OOB 'Z' "mn", "kl" read: the client is at the mark
 *   inline    SO_OOBINLINE: "op" OOB 'W' "qr", the byte stays in the stream
 *   last      "wx" OOB 'U', the urgent byte last
 *
 * Every receiving socket is owned (F_SETOWN) with a SIGURG handler: each
 * got exactly one SIGURG before the checkpoint, and none may come again
 * by itself. After GO: SIOCATMARK, recv(MSG_OOB) and the reads that stop
 * at the mark answer as they would have, then each connection carries
 * new data and new urgent data both ways.
 *
 *   netoob GOFILE notyet: an urgent pointer whose byte has not arrived,
 *                         which stasis refuses (see mode_notyet)
 *
 * Sabotage "oob": the pending urgent byte is taken before the check (in
 * notyet: a byte of the data before it is skipped).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <linux/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>

#include "testprog.h"

enum { PENDING, REVERSE, READ, ATMARK, INLINE, LAST, NR_CASES };

static const char *const names[NR_CASES] = {"pending", "reverse", "read", "atmark", "inline", "last"};

struct conn {
	int fam;
	int rx, tx; /* the receiving and the sending ends */
	int inq;    /* SIOCINQ at the checkpoint */
};

static struct conn conns[2][NR_CASES];
static volatile sig_atomic_t sigurgs;

static void on_sigurg(int sig)
{
	(void)sig;
	sigurgs++;
}

static socklen_t loopback(struct sockaddr_storage *ss, int fam, unsigned port)
{
	memset(ss, 0, sizeof(*ss));
	if (fam == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof(*a);
	}
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

	a6->sin6_family = AF_INET6;
	a6->sin6_port = htons(port);
	a6->sin6_addr = in6addr_loopback;
	return sizeof(*a6);
}

/* A connected pair: [0] the client, [1] the accepted end. */
static void tcp_pair(int fam, int fds[2])
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(&ss, fam, 0);
	int l = socket(fam, SOCK_STREAM, 0), one = 1;

	if (l < 0 || bind(l, (struct sockaddr *)&ss, len) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&ss, &len))
		tp_die("listener");
	fds[0] = socket(fam, SOCK_STREAM, 0);
	if (fds[0] < 0 || connect(fds[0], (struct sockaddr *)&ss, len))
		tp_die("connect");
	fds[1] = accept(l, NULL, NULL);
	if (fds[1] < 0)
		tp_die("accept");
	close(l);
	setsockopt(fds[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fds[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void sendstr(int fd, const char *s, int flags)
{
	if (send(fd, s, strlen(s), flags) != (ssize_t)strlen(s))
		tp_die("send");
}

static int inq(int fd)
{
	int n = -1;

	ioctl(fd, SIOCINQ, &n);
	return n;
}

static int atmark(int fd)
{
	int n = -1;

	ioctl(fd, SIOCATMARK, &n);
	return n;
}

/* Bytes received in order so far (SIOCINQ stops at an urgent mark). */
static unsigned long long received(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len);
	return ti.tcpi_bytes_received;
}

/* Sends S to the other end of FD's connection and waits until it is in. */
static void send_in(int to, int fd, const char *s, int flags)
{
	unsigned long long want = received(fd) + strlen(s);

	sendstr(to, s, flags);
	for (int i = 0; i < 2000 && received(fd) < want; i++)
		usleep(1000);
	if (received(fd) < want)
		tp_die("\"%s\" never arrived", s);
}

/* What the receiving end of case C holds, sent before READY. */
static void set_up(struct conn *c, int kind)
{
	static const char *const before[NR_CASES] = {"abc", "st", "gh", "kl", "op", "wx"};
	static const char *const urgent[NR_CASES] = {"X", "V", "Y", "Z", "W", "U"};
	static const char *const after[NR_CASES] = {"def", "uv", "ij", "mn", "qr", ""};
	int fds[2], one = 1;
	char buf[8];

	tcp_pair(c->fam, fds);
	c->rx = kind == REVERSE ? fds[1] : fds[0];
	c->tx = kind == REVERSE ? fds[0] : fds[1];
	if (fcntl(c->rx, F_SETOWN, getpid()))
		tp_die("F_SETOWN");
	if (kind == INLINE && setsockopt(c->rx, SOL_SOCKET, SO_OOBINLINE, &one, sizeof(one)))
		tp_die("SO_OOBINLINE");
	send_in(c->tx, c->rx, before[kind], 0);
	send_in(c->tx, c->rx, urgent[kind], MSG_OOB);
	if (*after[kind])
		send_in(c->tx, c->rx, after[kind], 0);
	if (kind == READ && recv(c->rx, buf, 1, MSG_OOB) != 1)
		tp_die("recv MSG_OOB");
	if (kind == ATMARK && recv(c->rx, buf, 2, 0) != 2)
		tp_die("recv up to the mark");
	c->inq = inq(c->rx);
}

/* Reads what is there now (nonblocking) into BUF as a string. */
static const char *read_now(int fd, char *buf, size_t size)
{
	ssize_t n = recv(fd, buf, size - 1, MSG_DONTWAIT);

	if (n < 0)
		snprintf(buf, size, "<%s>", strerror(errno));
	else
		buf[n] = 0;
	return buf;
}

static void expect_str(const char *what, const char *got, const char *want)
{
	if (strcmp(got, want))
		tp_fail("%s: got \"%s\", expected \"%s\"", what, got, want);
}

static void expect_int(const char *what, int got, int want)
{
	if (got != want)
		tp_fail("%s: %d, expected %d", what, got, want);
}

/* recv(MSG_OOB): the byte, or "<error>". */
static const char *oob(int fd, char *buf, size_t size)
{
	ssize_t n = recv(fd, buf, 1, MSG_OOB | MSG_DONTWAIT);

	if (n < 0)
		snprintf(buf, size, "<%s>", strerror(errno));
	else
		buf[n] = 0;
	return buf;
}

static void check(struct conn *c, int kind)
{
	char w[64], buf[64];

	snprintf(w, sizeof(w), "%s %s", c->fam == AF_INET ? "v4" : "v6", names[kind]);
#define CHK_STR(label, got, want)                                                                  \
	do {                                                                                       \
		char l_[96];                                                                       \
		snprintf(l_, sizeof(l_), "%s: %s", w, label);                                      \
		expect_str(l_, got, want);                                                         \
	} while (0)
#define CHK_INT(label, got, want)                                                                  \
	do {                                                                                       \
		char l_[96];                                                                       \
		snprintf(l_, sizeof(l_), "%s: %s", w, label);                                      \
		expect_int(l_, got, want);                                                         \
	} while (0)
	CHK_INT("SIOCINQ", inq(c->rx), c->inq);
	switch (kind) {
	case PENDING:
	case REVERSE: {
		const char *b = kind == PENDING ? "abc" : "st", *u = kind == PENDING ? "X" : "V",
			   *a = kind == PENDING ? "def" : "uv";

		CHK_INT("at the mark first", atmark(c->rx), 0);
		CHK_STR("MSG_OOB", oob(c->rx, buf, sizeof(buf)), u);
		CHK_STR("read to the mark", read_now(c->rx, buf, sizeof(buf)), b);
		CHK_INT("at the mark then", atmark(c->rx), 1);
		CHK_STR("read after the mark", read_now(c->rx, buf, sizeof(buf)), a);
		break;
	}
	case READ:
		CHK_STR("MSG_OOB again", oob(c->rx, buf, sizeof(buf)), "<Invalid argument>");
		CHK_STR("read to the mark", read_now(c->rx, buf, sizeof(buf)), "gh");
		CHK_STR("read after the mark", read_now(c->rx, buf, sizeof(buf)), "ij");
		break;
	case ATMARK:
		CHK_INT("at the mark", atmark(c->rx), 1);
		CHK_STR("MSG_OOB", oob(c->rx, buf, sizeof(buf)), "Z");
		CHK_STR("read after the mark", read_now(c->rx, buf, sizeof(buf)), "mn");
		break;
	case INLINE:
		CHK_INT("at the mark first", atmark(c->rx), 0);
		CHK_STR("MSG_OOB (inline)", oob(c->rx, buf, sizeof(buf)), "<Invalid argument>");
		CHK_STR("read to the mark", read_now(c->rx, buf, sizeof(buf)), "op");
		CHK_INT("at the mark then", atmark(c->rx), 1);
		CHK_STR("read from the mark", read_now(c->rx, buf, sizeof(buf)), "Wqr");
		break;
	case LAST:
		CHK_STR("MSG_OOB", oob(c->rx, buf, sizeof(buf)), "U");
		CHK_STR("read to the mark", read_now(c->rx, buf, sizeof(buf)), "wx");
		CHK_INT("at the mark then", atmark(c->rx), 1);
		CHK_STR("nothing after it", read_now(c->rx, buf, sizeof(buf)),
			"<Resource temporarily unavailable>");
		break;
	}
	/* the connection goes on, both ways, urgent data too */
	send_in(c->tx, c->rx, "new", 0);
	send_in(c->rx, c->tx, "back", 0);
	CHK_STR("new data", read_now(c->rx, buf, sizeof(buf)), "new");
	CHK_STR("data back", read_now(c->tx, buf, sizeof(buf)), "back");
	if (kind != INLINE) {
		sendstr(c->tx, "!", MSG_OOB);
		for (int i = 0; i < 2000 && atmark(c->rx) != 1; i++)
			usleep(1000);
		CHK_STR("new urgent byte", oob(c->rx, buf, sizeof(buf)), "!");
	}
#undef CHK_STR
#undef CHK_INT
}

/*
 * notyet: the peer's urgent pointer announced, its byte not arrived (the
 * receiver's window is closed): stasis refuses it; the tree runs on and
 * after GO the receiver gets the data, then the urgent byte.
 */
static int mode_notyet(void)
{
	static char data[20000];
	int fds[2], one = 1, big = 65536;
	size_t got = 0;
	char buf[4096];

	memset(data, 'd', sizeof(data));
	/* a window much smaller than what is sent */
	{
		struct sockaddr_storage ss;
		socklen_t len = loopback(&ss, AF_INET, 0);
		int l = socket(AF_INET, SOCK_STREAM, 0);

		fds[0] = socket(AF_INET, SOCK_STREAM, 0);
		if (l < 0 || fds[0] < 0 || bind(l, (struct sockaddr *)&ss, len) || listen(l, 1) ||
		    getsockname(l, (struct sockaddr *)&ss, &len) ||
		    setsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &one, sizeof(one)) ||
		    connect(fds[0], (struct sockaddr *)&ss, len))
			tp_die("connect");
		fds[1] = accept(l, NULL, NULL);
		if (fds[1] < 0 || setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big)))
			tp_die("accept");
		close(l);
	}
	fcntl(fds[1], F_SETFL, O_NONBLOCK);
	if (send(fds[1], data, sizeof(data), 0) != (ssize_t)sizeof(data))
		tp_die("send");
	usleep(200000);
	if (send(fds[1], "U", 1, MSG_OOB) != 1)
		tp_die("send MSG_OOB");
	for (int i = 0; i < 2000 && !(recv(fds[0], buf, 1, MSG_OOB | MSG_PEEK | MSG_DONTWAIT) < 0 &&
				     errno == EAGAIN);
	     i++)
		usleep(1000);
	if (recv(fds[0], buf, 1, MSG_OOB | MSG_PEEK | MSG_DONTWAIT) >= 0 || errno != EAGAIN)
		tp_die("the urgent pointer did not come before its byte");
	tp_ready();
	tp_wait_go();
	if (tp_sabotaged("oob"))
		got = 1;
	while (got < sizeof(data)) {
		ssize_t n = recv(fds[0], buf, sizeof(buf) < sizeof(data) - got ? sizeof(buf)
										  : sizeof(data) - got, 0);

		if (n <= 0) {
			tp_fail("the data before the urgent byte: %zd after %zu bytes", n, got);
			break;
		}
		got += (size_t)n;
	}
	for (int i = 0; i < 2000 && recv(fds[0], buf, 1, MSG_OOB | MSG_PEEK | MSG_DONTWAIT) != 1; i++)
		usleep(1000);
	if (recv(fds[0], buf, 1, MSG_OOB | MSG_DONTWAIT) != 1 || buf[0] != 'U')
		tp_fail("no urgent byte U after the data");
	if (atmark(fds[0]) != 1)
		tp_fail("not at the mark after the data");
	return tp_finish();
}

int main(int argc, char **argv)
{
	static const int fams[2] = {AF_INET, AF_INET6};
	struct sigaction sa = {.sa_handler = on_sigurg};
	int before, fresh;

	tp_init(argc, argv, 1, "GOFILE [notyet]");
	if (argc > 2 && !strcmp(argv[2], "notyet"))
		return mode_notyet();
	sigaction(SIGURG, &sa, NULL);
	for (int f = 0; f < 2; f++)
		for (int k = 0; k < NR_CASES; k++) {
			conns[f][k].fam = fams[f];
			set_up(&conns[f][k], k);
		}
	/* one SIGURG per urgent byte, all in by now */
	for (int i = 0; i < 1000 && sigurgs < 2 * NR_CASES; i++)
		usleep(1000);
	before = sigurgs;
	if (before != 2 * NR_CASES)
		tp_die("%d SIGURG before the checkpoint, expected %d", before, 2 * NR_CASES);
	tp_ready();
	tp_wait_go();
	usleep(100000);
	if (sigurgs != before)
		tp_fail("%d SIGURG came by themselves after the restore", sigurgs - before);
	if (tp_sabotaged("oob")) {
		char c;

		recv(conns[0][PENDING].rx, &c, 1, MSG_OOB);
	}
	for (int f = 0; f < 2; f++)
		for (int k = 0; k < NR_CASES; k++)
			check(&conns[f][k], k);
	/* the new urgent bytes signalled as usual */
	fresh = 2 * (NR_CASES - 1);
	for (int i = 0; i < 1000 && sigurgs < before + fresh; i++)
		usleep(1000);
	if (sigurgs != before + fresh)
		tp_fail("%d SIGURG for the %d urgent bytes sent after the restore", sigurgs - before,
			fresh);
	return tp_finish();
}
