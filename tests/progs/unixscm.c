/*
 * Unix socket messages with control data across a checkpoint.
 *
 *   unixscm GOFILE rights TYPE DIR  a queue (TYPE stream, dgram or seqpacket)
 *                                   whose messages carry descriptors: both
 *                                   ends of a pipe only in flight, a file
 *                                   the task also holds, the socket itself
 *                                   and its peer, a listener and a socket
 *                                   only in flight with its own queue
 *                                   carrying a pipe end; an eventfd, a
 *                                   memfd, a deleted file and a directory;
 *                                   plain messages between them
 *   unixscm GOFILE epoll            an epoll instance only in flight (sent
 *                                   twice), watching a socket and an
 *                                   eventfd the task holds
 *   unixscm GOFILE userfaultfd      a file stasis does not carry, in flight
 *   unixscm GOFILE creds TYPE       messages sent by the task, by its child
 *                                   and with credentials of another user to
 *                                   a receiver with SO_PASSCRED; a child's
 *                                   message to a receiver that turns
 *                                   SO_PASSCRED on only after the restore
 *                                   (the kernel kept no credentials for it);
 *                                   SO_PEERCRED of a pair the task made and
 *                                   of one its child made
 *
 * Each message is read with a buffer of exactly its length, so that data
 * boundaries, and which bytes carry which descriptors, are checked even on
 * a stream.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "testprog.h"

#define MAX_FDS 8


static int sock_type(const char *name)
{
	if (!strcmp(name, "stream"))
		return SOCK_STREAM;
	if (!strcmp(name, "dgram"))
		return SOCK_DGRAM;
	if (!strcmp(name, "seqpacket"))
		return SOCK_SEQPACKET;
	tp_die("unknown socket type %s", name);
}

static void xpair(int type, int sv[2])
{
	if (socketpair(AF_UNIX, type, 0, sv))
		tp_die("socketpair");
}

/* Sends data with fds (SCM_RIGHTS) and, when cred is given, SCM_CREDENTIALS. */
static void send_msg(int fd, const char *data, const int *fds, int nr, const struct ucred *cred)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * MAX_FDS) + CMSG_SPACE(sizeof(struct ucred))];
	} ctl;
	struct iovec iov = {(void *)data, strlen(data)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf};
	struct cmsghdr *c = (struct cmsghdr *)ctl.buf;

	memset(&ctl, 0, sizeof(ctl));
	if (nr) {
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nr * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nr * sizeof(int));
		mh.msg_controllen += CMSG_SPACE(nr * sizeof(int));
		c = (struct cmsghdr *)(ctl.buf + mh.msg_controllen);
	}
	if (cred) {
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_CREDENTIALS;
		c->cmsg_len = CMSG_LEN(sizeof(*cred));
		memcpy(CMSG_DATA(c), cred, sizeof(*cred));
		mh.msg_controllen += CMSG_SPACE(sizeof(*cred));
	}
	if (!mh.msg_controllen)
		mh.msg_control = NULL;
	if (sendmsg(fd, &mh, 0) != (ssize_t)iov.iov_len)
		tp_die("sendmsg \"%s\"", data);
}

struct got {
	bool ok;
	int fds[MAX_FDS];
	int nr;
	bool has_cred;
	struct ucred cred;
};

/* The next message must be exactly data; returns its fds and credentials. */
static struct got expect_msg(int fd, const char *what, const char *data)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * MAX_FDS) + CMSG_SPACE(sizeof(struct ucred))];
	} ctl;
	size_t len = strlen(data);
	char buf[256];
	struct iovec iov = {buf, len ? len : 1};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = ctl.buf,
			    .msg_controllen = sizeof(ctl.buf)};
	struct pollfd p = {fd, POLLIN, 0};
	struct got g = {0};
	ssize_t n;

	if (poll(&p, 1, 2000) != 1) {
		tp_fail("%s: nothing to read (expected \"%s\")", what, data);
		return g;
	}
	n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); n >= 0 && c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			int k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			memcpy(g.fds + g.nr, CMSG_DATA(c), k * sizeof(int));
			g.nr += k;
		} else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
			memcpy(&g.cred, CMSG_DATA(c), sizeof(g.cred));
			g.has_cred = true;
		}
	}
	if (n < 0)
		tp_fail("%s: recvmsg: %s", what, strerror(errno));
	else if ((size_t)n != len || memcmp(buf, data, len))
		tp_fail("%s: got \"%.*s\", expected \"%s\"", what, (int)n, buf, data);
	else if (mh.msg_flags & MSG_CTRUNC)
		tp_fail("%s: control data truncated", what);
	else
		g.ok = true;
	return g;
}

static bool expect_fds(const char *what, struct got *g, int nr)
{
	if (!g->ok)
		return false;
	if (g->nr != nr) {
		tp_fail("%s: %d descriptors came with it, expected %d", what, g->nr, nr);
		return false;
	}
	return true;
}

static ino_t ino_of(int fd)
{
	struct stat st;

	return fstat(fd, &st) ? 0 : st.st_ino;
}

static void expect_read(int fd, const char *what, const char *data)
{
	char buf[64];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n != (ssize_t)strlen(data) || memcmp(buf, data, n))
		tp_fail("%s: read %zd bytes, expected \"%s\"", what, n, data);
}

static void expect_empty(int fd, const char *what)
{
	char buf[16];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n >= 0 || errno != EAGAIN)
		tp_fail("%s: the queue should be empty, recv gave %zd", what, n);
}

/* ------------------------------------------------------------ rights */

/* Other kinds in flight: an eventfd with a count, a memfd with data, a
 * deleted file with data and an offset, a directory. */
static void kinds_send(int via, const char *dir)
{
	char path[4096];
	int fds[4];

	fds[0] = eventfd(5, EFD_NONBLOCK);
	fds[1] = memfd_create("stasis-unixscm", 0);
	snprintf(path, sizeof(path), "%s/unixscm.deleted", dir);
	fds[2] = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	fds[3] = open(dir, O_RDONLY | O_DIRECTORY);
	if (fds[0] < 0 || fds[1] < 0 || fds[2] < 0 || fds[3] < 0 ||
	    write(fds[1], "memfd data", 10) != 10 || write(fds[2], "deleted data", 12) != 12 ||
	    lseek(fds[2], 8, SEEK_SET) != 8 || unlink(path))
		tp_die("kinds in flight");
	send_msg(via, "kinds", fds, 4, NULL);
	for (int i = 0; i < 4; i++)
		close(fds[i]);
}

static void kinds_check(int fd)
{
	struct got g = expect_msg(fd, "message 6", "kinds");
	uint64_t v = 0;
	char buf[32];
	struct stat st;

	if (!expect_fds("message 6", &g, 4))
		return;
	if (read(g.fds[0], &v, sizeof(v)) != sizeof(v) || v != 5)
		tp_fail("eventfd in flight: count %llu, expected 5", (unsigned long long)v);
	if (pread(g.fds[1], buf, 10, 0) != 10 || memcmp(buf, "memfd data", 10))
		tp_fail("memfd in flight: its data differs");
	if (lseek(g.fds[2], 0, SEEK_CUR) != 8 || read(g.fds[2], buf, 4) != 4 ||
	    memcmp(buf, "data", 4))
		tp_fail("deleted file in flight: offset or data differ");
	if (fstat(g.fds[2], &st) || st.st_nlink != 0)
		tp_fail("deleted file in flight: it has a name again");
	if (fstat(g.fds[3], &st) || !S_ISDIR(st.st_mode))
		tp_fail("directory in flight: not a directory");
	for (int i = 0; i < 4; i++)
		close(g.fds[i]);
}

static int rights(int type, const char *dir)
{
	bool stream = type == SOCK_STREAM;
	int q[2], p[2], p2[2], z[2], f, l, sent[3];
	struct sockaddr_un la = {.sun_family = AF_UNIX};
	socklen_t lalen;
	char path[4096];
	struct got g;

	xpair(type, q);
	if (pipe(p) || pipe(p2))
		tp_die("pipe");
	if (write(p[1], "pipe data", 9) != 9)
		tp_die("write pipe");
	snprintf(path, sizeof(path), "%s/unixscm.file", dir);
	f = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (f < 0 || write(f, "0123456789", 10) != 10 || lseek(f, 3, SEEK_SET) != 3)
		tp_die("file %s", path);
	snprintf(la.sun_path + 1, sizeof(la.sun_path) - 1, "stasis-unixscm-%d", (int)getpid());
	lalen = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(la.sun_path + 1);
	l = socket(AF_UNIX, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&la, lalen) || listen(l, 4))
		tp_die("listener");
	/* a socket only in flight, with a pipe end in flight in its queue */
	xpair(type, z);
	send_msg(z[0], "inner", &p2[1], 1, NULL);

	/* on a stream, plain bytes before a message with descriptors read as
	 * part of it after the restore (see collect/sockets.c): they come last */
	if (!stream)
		send_msg(q[0], "first", NULL, 0, NULL);
	send_msg(q[0], "pipes", p, 2, NULL);
	sent[0] = f, sent[1] = q[1], sent[2] = q[0];
	send_msg(q[0], "files", sent, 3, NULL);
	if (!stream)
		send_msg(q[0], "plain", NULL, 0, NULL);
	sent[0] = z[1], sent[1] = l;
	send_msg(q[0], "nested", sent, 2, NULL);
	kinds_send(q[0], dir);
	if (stream) {
		send_msg(q[0], "first", NULL, 0, NULL);
		send_msg(q[0], "plain", NULL, 0, NULL);
	}
	close(p[0]);
	close(p[1]);
	close(p2[1]);
	close(z[1]);
	close(l);

	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("rights"))
		expect_msg(q[1], "sabotage", "pipes");

	if (!stream) {
		g = expect_msg(q[1], "message 1", "first");
		expect_fds("message 1", &g, 0);
	}

	g = expect_msg(q[1], "message 2", "pipes");
	if (expect_fds("message 2", &g, 2)) {
		expect_read(g.fds[0], "pipe in flight (queued data)", "pipe data");
		if (write(g.fds[1], "x", 1) != 1)
			tp_fail("pipe in flight: write: %s", strerror(errno));
		expect_read(g.fds[0], "pipe in flight", "x");
		close(g.fds[1]);
		expect_read(g.fds[0], "pipe in flight (writer closed: end of file)", "");
		close(g.fds[0]);
	}

	g = expect_msg(q[1], "message 3", "files");
	if (expect_fds("message 3", &g, 3)) {
		if (lseek(g.fds[0], 0, SEEK_CUR) != 3)
			tp_fail("file in flight: offset %lld, expected 3",
				(long long)lseek(g.fds[0], 0, SEEK_CUR));
		lseek(f, 7, SEEK_SET);
		if (lseek(g.fds[0], 0, SEEK_CUR) != 7)
			tp_fail("file in flight is not the description the task holds");
		if (ino_of(g.fds[1]) != ino_of(q[1]))
			tp_fail("the socket in its own queue is another socket");
		if (ino_of(g.fds[2]) != ino_of(q[0]))
			tp_fail("the peer in flight is another socket");
		for (int i = 0; i < 3; i++)
			close(g.fds[i]);
	}

	if (!stream) {
		g = expect_msg(q[1], "message 4", "plain");
		expect_fds("message 4", &g, 0);
	}

	g = expect_msg(q[1], "message 5", "nested");
	if (expect_fds("message 5", &g, 2)) {
		struct sockaddr_un got = {0};
		socklen_t glen = sizeof(got);
		int v = 0, c, s;
		socklen_t vl = sizeof(v);
		struct got in = expect_msg(g.fds[0], "socket in flight: its queue", "inner");

		if (expect_fds("socket in flight: its message", &in, 1)) {
			if (write(in.fds[0], "y", 1) != 1)
				tp_fail("pipe end in flight in a socket in flight: write");
			expect_read(p2[0], "pipe end in flight in a socket in flight", "y");
			close(in.fds[0]);
		}
		send_msg(z[0], "after", NULL, 0, NULL);
		expect_msg(g.fds[0], "socket in flight: its peer", "after");
		if (getsockname(g.fds[1], (struct sockaddr *)&got, &glen) || glen != lalen ||
		    memcmp(&got, &la, lalen))
			tp_fail("listener in flight: its name is not the one it had");
		getsockopt(g.fds[1], SOL_SOCKET, SO_ACCEPTCONN, &v, &vl);
		if (!v)
			tp_fail("listener in flight: not listening");
		c = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(c, (struct sockaddr *)&la, lalen))
			tp_fail("listener in flight: connect: %s", strerror(errno));
		s = accept(g.fds[1], NULL, NULL);
		if (s < 0)
			tp_fail("listener in flight: accept: %s", strerror(errno));
		close(c);
		close(s);
		close(g.fds[0]);
		close(g.fds[1]);
	}
	kinds_check(q[1]);
	if (stream) {
		g = expect_msg(q[1], "message 4", "firstplain");
		expect_fds("message 4", &g, 0);
	}
	expect_empty(q[1], "the queue after its messages");
	unlink(path);
	return tp_finish();
}

/* ------------------------------------------------------------- creds */

static void expect_cred(const char *what, struct got *g, pid_t pid, uid_t uid, gid_t gid)
{
	if (!g->ok)
		return;
	if (!g->has_cred)
		tp_fail("%s: no credentials came with it", what);
	else if (g->cred.pid != pid || g->cred.uid != uid || g->cred.gid != gid)
		tp_fail("%s: credentials pid %d uid %u gid %u, expected pid %d uid %u gid %u", what,
			g->cred.pid, g->cred.uid, g->cred.gid, pid, uid, gid);
}

/* SO_PEERCRED of fd must name pid (and this task's uid and gid). */
static void expect_peercred(const char *what, int fd, pid_t pid)
{
	struct ucred cr = {0};
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len))
		tp_fail("%s: SO_PEERCRED: %s", what, strerror(errno));
	else if (cr.pid != pid || cr.uid != getuid() || cr.gid != getgid())
		tp_fail("%s: SO_PEERCRED pid %d uid %u gid %u, expected pid %d uid %u gid %u", what,
			cr.pid, cr.uid, cr.gid, pid, getuid(), getgid());
}

static int creds(int type)
{
	int q[2], r[2], x[2], on = 1, ready[2], ret, childpair = -1;
	struct ucred other = {getpid(), 1234, 5678};
	pid_t child;
	char c;
	struct got g;

	xpair(type, q);
	xpair(type, r);
	xpair(SOCK_DGRAM, x);
	if (setsockopt(q[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) || pipe(ready))
		tp_die("SO_PASSCRED");
	send_msg(q[0], "self", NULL, 0, NULL);
	child = fork();
	if (child < 0)
		tp_die("fork");
	if (!child) {
		int cp[2];

		/* a pair the child makes: SO_PEERCRED names the child */
		xpair(type, cp);
		send_msg(x[0], "pair", cp, 1, NULL);
		send_msg(q[0], "child", NULL, 0, NULL);
		send_msg(r[0], "later", NULL, 0, NULL);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	if (read(ready[0], &c, 1) != 1)
		tp_die("child");
	g = expect_msg(x[1], "the child's pair", "pair");
	if (g.nr != 1)
		tp_die("the child's pair");
	childpair = g.fds[0];
	send_msg(q[0], "other user", NULL, 0, &other);
	send_msg(q[0], "self again", NULL, 0, NULL);

	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("peercred")) {
		int sp[2];

		xpair(type, sp);
		dup2(sp[0], childpair);
	}
	expect_peercred("a pair the task made", q[0], getpid());
	expect_peercred("a pair its child made", childpair, child);
	if (tp_sabotaged("creds")) {
		/* the same messages again, all sent by the task itself */
		const char *msgs[] = {"self", "child", "other user", "self again"};

		for (int i = 0; i < 4; i++) {
			expect_msg(q[1], "sabotage", msgs[i]);
			send_msg(q[0], msgs[i], NULL, 0, NULL);
		}
	}
	g = expect_msg(q[1], "message 1", "self");
	expect_cred("message 1 (from the task)", &g, getpid(), getuid(), getgid());
	g = expect_msg(q[1], "message 2", "child");
	expect_cred("message 2 (from its child)", &g, child, getuid(), getgid());
	g = expect_msg(q[1], "message 3", "other user");
	expect_cred("message 3 (another user's credentials)", &g, getpid(), 1234, 5678);
	g = expect_msg(q[1], "message 4", "self again");
	expect_cred("message 4 (from the task)", &g, getpid(), getuid(), getgid());
	if (setsockopt(r[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)))
		tp_fail("SO_PASSCRED: %s", strerror(errno));
	/* no SO_PASSCRED on either side at the send: the kernel kept none */
	g = expect_msg(r[1], "message sent without SO_PASSCRED", "later");
	expect_cred("message sent without SO_PASSCRED (no credentials)", &g, 0, 65534, 65534);
	ret = tp_finish();
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return ret;
}

/* The registrations fdinfo shows: "tfd: N events: E data: D" lines. */
static int epoll_regs(int ep, unsigned tfd[], unsigned events[], unsigned long long data[],
		      int max)
{
	char path[64], line[256];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", ep);
	f = fopen(path, "r");
	if (!f)
		tp_die("%s", path);
	while (n < max && fgets(line, sizeof(line), f))
		if (sscanf(line, "tfd: %u events: %x data: %llx", &tfd[n], &events[n], &data[n]) ==
		    3)
			n++;
	fclose(f);
	/* in the kernel's order (by file): sorted by number */
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && tfd[j - 1] > tfd[j]; j--) {
			unsigned t = tfd[j], e = events[j];
			unsigned long long d = data[j];

			tfd[j] = tfd[j - 1], events[j] = events[j - 1], data[j] = data[j - 1];
			tfd[j - 1] = t, events[j - 1] = e, data[j - 1] = d;
		}
	return n;
}

/*
 * An epoll only in flight (sent twice, then closed), watching a stream
 * socket and an eventfd (edge-triggered) the task holds: after GO it is
 * received back from both messages, the same instance, with the same
 * registrations (numbers, events, data); both report once written to, and
 * a registration is deleted by its number.
 */
static int epoll_in_flight(void)
{
	unsigned tfd[2][4], ev[2][4];
	unsigned long long data[2][4];
	struct epoll_event e[4];
	int q[2], w[2], efd, ep, n[2];
	struct got g1, g2;
	struct stat st1, st2;
	uint64_t one = 1;
	bool got_sk = false, got_efd = false;

	xpair(SOCK_DGRAM, q);
	xpair(SOCK_STREAM, w);
	efd = eventfd(0, EFD_NONBLOCK);
	ep = epoll_create1(0);
	if (efd < 0 || ep < 0)
		tp_die("eventfd/epoll");
	e[0] = (struct epoll_event){.events = EPOLLIN, .data.u64 = 0xabc};
	e[1] = (struct epoll_event){.events = EPOLLIN | EPOLLET, .data.u64 = 0xdef};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, w[1], &e[0]) || epoll_ctl(ep, EPOLL_CTL_ADD, efd, &e[1]))
		tp_die("epoll_ctl");
	n[0] = epoll_regs(ep, tfd[0], ev[0], data[0], 4);
	send_msg(q[0], "ep1", &ep, 1, NULL);
	send_msg(q[0], "ep2", &ep, 1, NULL);
	close(ep);
	tp_ready();
	tp_wait_go();
	g1 = expect_msg(q[1], "the first message", "ep1");
	g2 = expect_msg(q[1], "the second message", "ep2");
	if (!expect_fds("the first message", &g1, 1) || !expect_fds("the second message", &g2, 1))
		return tp_finish();
	ep = g1.fds[0];
	if (fstat(ep, &st1) || fstat(g2.fds[0], &st2) || st1.st_ino != st2.st_ino)
		tp_fail("the two messages carry different epoll instances");
	if (tp_sabotaged("epoll"))
		epoll_ctl(ep, EPOLL_CTL_DEL, efd, NULL);
	n[1] = epoll_regs(ep, tfd[1], ev[1], data[1], 4);
	if (n[1] != n[0] || memcmp(tfd[0], tfd[1], n[0] * sizeof(unsigned)) ||
	    memcmp(ev[0], ev[1], n[0] * sizeof(unsigned)) ||
	    memcmp(data[0], data[1], n[0] * sizeof(data[0][0])))
		tp_fail("the registrations changed: %d of them, %d before", n[1], n[0]);
	if (write(w[0], "x", 1) != 1 || write(efd, &one, sizeof(one)) != sizeof(one))
		tp_die("write");
	for (int i = 0, r = epoll_wait(ep, e, 4, 1000); i < r; i++) {
		got_sk |= e[i].data.u64 == 0xabc && (e[i].events & EPOLLIN);
		got_efd |= e[i].data.u64 == 0xdef && (e[i].events & EPOLLIN);
	}
	if (!got_sk || !got_efd)
		tp_fail("epoll_wait: the socket %s, the eventfd %s", got_sk ? "reported" : "silent",
			got_efd ? "reported" : "silent");
	if (epoll_ctl(ep, EPOLL_CTL_DEL, w[1], NULL))
		tp_fail("the socket's registration cannot be deleted by its number (%s)",
			strerror(errno));
	return tp_finish();
}

/* A file stasis does not carry at all, in flight (a userfaultfd); the
 * check receives it back. */
static int refused_in_flight(const char *what)
{
	int q[2], fd;
	struct got g;

	xpair(SOCK_DGRAM, q);
	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
	if (fd < 0)
		tp_die("%s", what);
	send_msg(q[0], what, &fd, 1, NULL);
	close(fd);
	tp_ready();
	tp_wait_go();
	g = expect_msg(q[1], "the message", what);
	expect_fds("the message", &g, 1);
	return tp_finish();
}

int main(int argc, char **argv)
{
	tp_init(argc, argv, 2, "GOFILE rights TYPE DIR | GOFILE creds TYPE | GOFILE epoll|userfaultfd");
	if (!strcmp(argv[2], "epoll"))
		return epoll_in_flight();
	if (!strcmp(argv[2], "userfaultfd"))
		return refused_in_flight(argv[2]);
	if (argc < 4)
		tp_die("%s needs a socket type", argv[2]);
	if (!strcmp(argv[2], "rights") && argc > 4)
		return rights(sock_type(argv[3]), argv[4]);
	if (!strcmp(argv[2], "creds"))
		return creds(sock_type(argv[3]));
	tp_die("unknown mode %s", argv[2]);
}
