// SPDX-License-Identifier: GPL-2.0
/*
 * Receive queues of unix sockets on restore: each message is sent again
 * from its peer's side (or by name, from the socket whose name sent it),
 * with the same bytes, the files it carried (SCM_RIGHTS) and its sender's
 * credentials (SCM_CREDENTIALS), once the tree's tasks exist
 * (docs/sockets.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "files.h"
#include "stasis/log.h"
#include "stasis/util.h"
#include "unix.h"

static int sender = -1; /* an unbound datagram socket to queue by name */

/* ---- files in flight ---- */

struct flight {
	uint32_t id;
	int fd;
};

static struct flight *flights; /* what queued messages carry, other than unix sockets */
static size_t nr_flights;

static struct usk *find_by_file(uint32_t id)
{
	for (size_t i = 0; i < nr_usks; i++)
		if (usks[i].fe->id == id)
			return &usks[i];
	return NULL;
}

/* A file an epoll in flight watches: one of the sockets made here, or a
 * description staged like the tasks' (a copy either way). */
static int epoll_target(uint32_t id)
{
	struct usk *u = find_by_file(id);
	int fd = u ? fcntl(u->fd, F_DUPFD_CLOEXEC, 0) : files_open_flight(id);

	if (u && fd < 0)
		pr_perror("unix socket %u: cannot duplicate its descriptor", u->sk->ino);
	return fd;
}

/* Every file in flight opened once, while the tree's files are staged (a
 * pipe's other end or a file a task also holds is the same description). */
int unix_open_flights(void)
{
	for (size_t i = 0; i < nr_usks; i++)
		for (size_t j = 0; j < usks[i].sk->n_queue; j++) {
			Stasis__UnixSkPacket *p = usks[i].sk->queue[j];

			for (size_t k = 0; k < p->n_fds; k++) {
				size_t f;

				if (find_by_file(p->fds[k]))
					continue;
				for (f = 0; f < nr_flights && flights[f].id != p->fds[k]; f++)
					;
				if (f < nr_flights)
					continue;
				flights = xrealloc(flights, (nr_flights + 1) * sizeof(*flights));
				flights[nr_flights].id = p->fds[k];
				flights[nr_flights].fd = files_open_flight(p->fds[k]);
				if (flights[nr_flights++].fd < 0 ||
				    epoll_register_flight(flights[nr_flights - 1].fd, p->fds[k],
							  epoll_target)) {
					pr_err("unix socket %u: cannot open file %u, in flight in "
					       "its queue",
					       usks[i].sk->ino, p->fds[k]);
					return -1;
				}
			}
		}
	return 0;
}

static int flight_fd(uint32_t id)
{
	struct usk *u = find_by_file(id);

	if (u)
		return u->fd;
	for (size_t f = 0; f < nr_flights; f++)
		if (flights[f].id == id)
			return flights[f].fd;
	return -1;
}

void unix_queue_cleanup(void)
{
	if (sender >= 0)
		close(sender);
	sender = -1;
	for (size_t f = 0; f < nr_flights; f++)
		if (flights[f].fd >= 0)
			close(flights[f].fd);
	free(flights);
	flights = NULL;
	nr_flights = 0;
}

/* ---- queued data ---- */

static bool cred_warned;

/*
 * One message (whole) or stream bytes (in as many sends as it takes), with
 * the files it carries (on the first send) and its sender's credentials
 * (on every one, so that a reader with SO_PASSCRED sees them).
 */
static int send_packet(int fd, const Stasis__UnixSkPacket *p, bool stream, struct sockaddr_un *to,
		       socklen_t tolen, uint32_t ino)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 253) + CMSG_SPACE(sizeof(struct ucred))];
	} ctl;
	const char *data = (const char *)p->data.data;
	size_t len = p->data.len, nr_fds = p->n_fds;
	struct ucred cred = {0};
	bool first = true;

	if (nr_fds > 253) {
		errno = EINVAL;
		return -1;
	}
	if (p->has_cred_pid)
		cred = (struct ucred){p->cred_pid, p->cred_uid, p->cred_gid};
	/* sent from here: the sender as we see it; one the tree's PID
	 * namespace cannot see (0) is us, whom it cannot see either */
	if (p->has_cred_pid && !(cred.pid = pstree_host_pid(p->cred_pid)))
		cred.pid = getpid();
	for (;;) {
		struct iovec iov = {(void *)data, len};
		struct msghdr mh = {.msg_name = to, .msg_namelen = tolen, .msg_iov = &iov,
				    .msg_iovlen = 1, .msg_control = ctl.buf};
		struct cmsghdr *c;
		ssize_t n;

		memset(ctl.buf, 0, sizeof(ctl.buf));
		c = (struct cmsghdr *)ctl.buf;
		if (first && nr_fds) {
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(nr_fds * sizeof(int));
			for (size_t i = 0; i < nr_fds; i++) {
				int f = flight_fd(p->fds[i]);

				if (f < 0) {
					pr_err("unix socket %u: file %u in flight was not opened",
					       ino, p->fds[i]);
					errno = EBADF;
					return -1;
				}
				memcpy(CMSG_DATA(c) + i * sizeof(int), &f, sizeof(int));
			}
			mh.msg_controllen += CMSG_SPACE(nr_fds * sizeof(int));
			c = (struct cmsghdr *)(ctl.buf + mh.msg_controllen);
		}
		if (p->has_cred_pid) {
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_CREDENTIALS;
			c->cmsg_len = CMSG_LEN(sizeof(cred));
			memcpy(CMSG_DATA(c), &cred, sizeof(cred));
			mh.msg_controllen += CMSG_SPACE(sizeof(cred));
		}
		if (!mh.msg_controllen)
			mh.msg_control = NULL;
		n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == ESRCH && p->has_cred_pid && cred.pid != getpid()) {
			/* the sender's PID is gone: the message cannot name it */
			if (!cred_warned)
				pr_warn("unix socket %u: the sender (PID %u) of a queued message "
					"is gone; the message names PID %d instead",
					ino, cred.pid, (int)getpid());
			cred_warned = true;
			cred.pid = getpid();
			continue;
		}
		if (n < 0)
			return -1;
		first = false;
		data += n;
		len -= n;
		if (!len || !stream)
			return 0;
	}
}

/* The socket whose bound name is addr, to send from it (datagrams). */
static int sender_for(const ProtobufCBinaryData *addr)
{
	for (size_t i = 0; addr && i < nr_usks; i++) {
		Stasis__UnixSk *sk = usks[i].sk;

		if (sk->type == SOCK_DGRAM && usks[i].fd >= 0 && !usks[i].inherited &&
		    sk->has_name && sk->name.len <= addr->len &&
		    !memcmp(sk->name.data, addr->data, sk->name.len) &&
		    (sk->name.len == addr->len || !addr->data[sk->name.len]))
			return usks[i].fd;
	}
	if (addr)
		return -1;
	if (sender < 0)
		sender = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	return sender;
}

/*
 * A sender whose socket is gone: a socket bound to its name for the send,
 * so that the message still names it (an abstract name, or a path whose
 * file is free: made, and removed after the send). -1 when it cannot be.
 */
static int gone_sender(const ProtobufCBinaryData *addr, char *made, size_t size)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = addr->len;
	struct stat st;
	int fd;

	made[0] = 0;
	if (!n || n > sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, addr->data, n);
	if (sa.sun_path[0]) {
		n = strnlen(sa.sun_path, n);
		if (n >= sizeof(sa.sun_path) || !lstat(sa.sun_path, &st))
			return -1;
		sa.sun_path[n++] = 0;
	}
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, offsetof(struct sockaddr_un, sun_path) + n)) {
		close(fd);
		return -1;
	}
	if (fd >= 0 && sa.sun_path[0])
		snprintf(made, size, "%s", sa.sun_path);
	return fd;
}

/* Room for everything that goes back: the sender's buffer holds it. */
static void grow_sndbuf(int fd)
{
	int v = 16 << 20;

	if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
}

/* Sends what was queued on u from the side whose sends land there. */
static int feed(struct usk *u)
{
	Stasis__UnixSk *sk = u->sk;
	struct sockaddr_un sa;
	socklen_t len = 0;
	int from = unix_pair_fd(u);

	if (!sk->n_queue)
		return 0;
	if (from < 0 && sk->type != SOCK_DGRAM) {
		pr_warn(
		    "unix socket %u: its peer is not restored by stasis; %zu queued messages are "
		    "dropped",
		    sk->ino, sk->n_queue);
		return 0;
	}
	if (from < 0) {
		len = unix_addr_of(u, &sa);
		if (!len) {
			pr_err(
			    "unix socket %u: no way to queue its %zu messages again (unnamed, not "
			    "connected)",
			    sk->ino, sk->n_queue);
			return -1;
		}
	}
	for (size_t i = 0; i < sk->n_queue; i++) {
		Stasis__UnixSkPacket *p = sk->queue[i];
		int fd = from >= 0 ? from : sender_for(p->has_addr ? &p->addr : NULL), gone = -1;
		char made[sizeof(sa.sun_path) + 1];
		int ret;

		if (fd < 0 && p->has_addr) {
			gone = gone_sender(&p->addr, made, sizeof(made));
			if (gone < 0)
				pr_warn("unix socket %u: the sender of message %zu is gone and its "
					"name is taken; the message comes from no name",
					sk->ino, i + 1);
			else
				grow_sndbuf(gone);
			fd = gone >= 0 ? gone : sender_for(NULL);
		}
		ret = fd < 0 || send_packet(fd, p, sk->type == SOCK_STREAM,
					    from >= 0 ? NULL : &sa, len, sk->ino);
		if (gone >= 0) {
			close(gone);
			if (made[0])
				unlink(made);
		}
		if (ret) {
			pr_perror(
			    "unix socket %u: cannot queue message %zu of %zu (%zu bytes) again",
			    sk->ino, i + 1, sk->n_queue, p->data.len);
			return -1;
		}
	}
	return 0;
}


int unix_queue_fill(void)
{
	/* (finish() sets every socket's own size afterwards) */
	for (size_t i = 0; i < nr_usks; i++)
		if (!usks[i].inherited) {
			grow_sndbuf(usks[i].fd);
			grow_sndbuf(usks[i].tmp);
		}
	grow_sndbuf(sender_for(NULL));
	for (size_t i = 0; i < nr_usks; i++) {
		struct usk *u = &usks[i];

		/* another datagram socket's queue may still need this one's name */
		if (!u->inherited && feed(u))
			return -1;
	}
	return 0;
}
