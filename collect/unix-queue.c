// SPDX-License-Identifier: GPL-2.0
/*
 * Receive queues of unix sockets: read once by peeking (MSG_PEEK from an
 * offset moved by SO_PEEK_OFF, put back afterwards), with the credentials
 * the kernel keeps for each message and copies of the files in flight
 * (SCM_RIGHTS), which are described like the tasks' own (docs/sockets.md).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <netinet/tcp.h>

#include "collect.h"
#include "files.h"
#include "stasis/log.h"
#include "stasis/sockdiag.h"
#include "stasis/util.h"
#include "unix.h"

/* sk_shutdown bits, as sock_diag reports them */
#define RCV_SHUTDOWN 1

/* A record is one frame (at most 4 MiB): queues stay well below. */
#define QUEUE_MAX    (3u << 20)
#define STREAM_PIECE (256u << 10)

/* One message of a receive queue, as a peek gives it. */
struct qmsg {
	const void *data;
	size_t len;
	const void *addr; /* datagrams: the sender's name */
	size_t alen;
	int *fds; /* SCM_RIGHTS: copies received by the peek, the callback's */
	size_t nr_fds;
	bool has_cred;
	struct ucred cred;
};

typedef int (*qmsg_fn)(const struct qmsg *m, void *arg);

/* What a peek received: its descriptors and credentials. */
static int control(struct msghdr *mh, struct qmsg *m, int *fds)
{
	m->fds = fds;
	m->nr_fds = 0;
	m->has_cred = false;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET)
			continue;
		if (c->cmsg_type == SCM_RIGHTS) {
			size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			memcpy(fds + m->nr_fds, CMSG_DATA(c), n * sizeof(int));
			m->nr_fds += n;
		} else if (c->cmsg_type == SCM_CREDENTIALS &&
			   c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
			memcpy(&m->cred, CMSG_DATA(c), sizeof(m->cred));
			m->has_cred = true;
		}
	}
	return mh->msg_flags & MSG_CTRUNC ? -1 : 0;
}

static void close_fds(const struct qmsg *m)
{
	for (size_t i = 0; i < m->nr_fds; i++)
		close(m->fds[i]);
}

/*
 * Walks the receive queue with MSG_PEEK from an offset that SO_PEEK_OFF
 * moves past what was read: a datagram or seqpacket peek returns exactly
 * one message, so boundaries are kept. SO_PASSCRED is on meanwhile, so
 * every message comes with the credentials the kernel keeps for it (and
 * a stream peek stops where the writer changes). Descriptors in flight
 * come as copies, handed to fn. A stream peek also stops after the
 * message that carries descriptors, but it cannot tell where that message
 * starts (a peek returns the next message's descriptors even with bytes
 * of the one before): they go with every byte since the last stop.
 */
static int walk_queue(pid_t pid, int tfd, int fd, const struct unix_diag_sk *d, int *peek_off,
		      qmsg_fn fn, void *arg)
{
	size_t size = d->type == SOCK_STREAM ? STREAM_PIECE : 64 << 10, total = 0;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 253) + CMSG_SPACE(sizeof(struct ucred)) +
			 CMSG_SPACE(128)];
	} ctl;
	int flags = MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC |
		    (d->type == SOCK_STREAM ? 0 : MSG_TRUNC);
	char *buf = xmalloc(size);
	int saved = -1, off = 0, passcred = 0, on = 1, ret = -1;
	unsigned rounds = 0;

	if (unix_getint(fd, SO_PEEK_OFF, &saved) || setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &off, 4)) {
		pr_perror("%s: cannot use SO_PEEK_OFF", unix_holder(pid, tfd));
		free(buf);
		return -1;
	}
	if (peek_off)
		*peek_off = saved;
	if (unix_getint(fd, SO_PASSCRED, &passcred) ||
	    (!passcred && setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)))) {
		pr_perror("%s: cannot use SO_PASSCRED", unix_holder(pid, tfd));
		goto out;
	}
	for (;;) {
		struct sockaddr_un from;
		struct iovec iov = {buf, size};
		struct msghdr mh = {
		    .msg_name = &from,
		    .msg_namelen = sizeof(from),
		    .msg_iov = &iov,
		    .msg_iovlen = 1,
		    .msg_control = ctl.buf,
		    .msg_controllen = sizeof(ctl.buf),
		};
		ssize_t n = recvmsg(fd, &mh, flags);
		int fds[253];
		struct qmsg m = {0};

		/* empty messages do not move the offset: each is returned once */
		if (++rounds > QUEUE_MAX) {
			pr_err("%s: the queue of unix socket %u does not end", unix_holder(pid, tfd), d->ino);
			goto out;
		}
		if (n < 0) {
			if (errno == EAGAIN)
				break;
			pr_perror("%s: cannot peek at the queue of unix socket %u",
				  unix_holder(pid, tfd), d->ino);
			goto out;
		}
		if (control(&mh, &m, fds)) {
			close_fds(&m);
			pr_err("%s: unix socket %u has a message with more "
			       "descriptors in flight than a peek can receive (or than "
			       "stasis-collect may open)",
			       unix_holder(pid, tfd), d->ino);
			goto out;
		}
		/* end of data: a stream (or seqpacket) whose peer is gone */
		if (n == 0 && !m.nr_fds &&
		    (d->type == SOCK_STREAM || (d->shutdown & RCV_SHUTDOWN))) {
			break;
		}
		if (d->type != SOCK_STREAM && (size_t)n > size) {
			/* a bigger message: read it again from its start */
			int at = total;

			close_fds(&m);
			size = PAGE_ALIGN(n);
			buf = xrealloc(buf, size);
			setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &at, 4);
			continue;
		}
		if (total + n > QUEUE_MAX) {
			close_fds(&m);
			pr_err(
			    "%s: unix socket %u has more than %u bytes queued, more "
			    "than a checkpoint record can hold",
			    unix_holder(pid, tfd), d->ino, QUEUE_MAX);
			goto out;
		}
		if (d->type == SOCK_DGRAM &&
		    mh.msg_namelen > offsetof(struct sockaddr_un, sun_path)) {
			m.addr = from.sun_path;
			m.alen = mh.msg_namelen - offsetof(struct sockaddr_un, sun_path);
		}
		m.data = buf;
		m.len = n;
		total += n;
		if (fn(&m, arg))
			goto out;
	}
	if (d->type != SOCK_DGRAM && total != d->rqueue) {
		pr_err(
		    "%s: read %zu bytes queued on unix socket %u, the kernel says %u",
		    unix_holder(pid, tfd), total, d->ino, d->rqueue);
		goto out;
	}
	ret = 0;
out:
	if (!passcred && setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &passcred, sizeof(passcred))) {
		pr_perror("%s: cannot put back SO_PASSCRED", unix_holder(pid, tfd));
		ret = -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &saved, 4)) {
		pr_perror("%s: cannot put back the peek offset", unix_holder(pid, tfd));
		ret = -1;
	}
	free(buf);
	return ret;
}

/* ---- queues, each peeked once ---- */

/*
 * Each queue is read once, when the tree's sockets are loaded (an empty
 * datagram, once peeked, is skipped by every later peek at an offset): its
 * messages wait here, with the descriptors in flight the peek received,
 * until the socket's dump.
 */
struct queued {
	Stasis__UnixSkPacket *p;
	int *fds;
	size_t nr_fds;
};

struct queue {
	uint32_t ino;
	int peek_off;
	struct queued *msgs;
	size_t nr;
};

static struct queue *queues;
static size_t nr_queues;

static struct queue *queue_of(uint32_t ino)
{
	for (size_t i = 0; i < nr_queues; i++)
		if (queues[i].ino == ino)
			return &queues[i];
	return NULL;
}

static int read_queue(pid_t pid, int tfd, int fd, const struct unix_diag_sk *d);

/* A message into the queue; a socket in flight is the tree's (its peer is
 * not outside), and so are the sockets in flight in its own queue. */
static int keep_msg(const struct qmsg *m, void *arg)
{
	uint32_t ino = *(uint32_t *)arg;
	Stasis__UnixSkPacket *p = xmalloc(sizeof(*p));
	struct queue *q;
	int ret = 0;

	stasis__unix_sk_packet__init(p);
	unix_set_bytes(&p->data, m->data, m->len);
	if (m->alen) {
		p->has_addr = true;
		unix_set_bytes(&p->addr, m->addr, m->alen);
	}
	/* pid 0: the kernel kept none (no SO_PASSCRED on either side at the send) */
	if (m->has_cred && m->cred.pid) {
		p->has_cred_pid = p->has_cred_uid = p->has_cred_gid = true;
		/* a sender outside the tree's PID namespace is 0 inside */
		p->cred_pid = pidns_vpid(m->cred.pid);
		p->cred_uid = m->cred.uid;
		p->cred_gid = m->cred.gid;
	}
	q = queue_of(ino);
	q->msgs = xrealloc(q->msgs, (q->nr + 1) * sizeof(*q->msgs));
	q->msgs[q->nr++] = (struct queued){p, xmalloc((m->nr_fds + 1) * sizeof(int)), m->nr_fds};
	memcpy(q->msgs[q->nr - 1].fds, m->fds, m->nr_fds * sizeof(int));
	for (size_t i = 0; i < m->nr_fds && !ret; i++) {
		const struct unix_diag_sk *d;
		struct stat st;

		if (!fstat(m->fds[i], &st) && S_ISSOCK(st.st_mode) &&
		    (d = unix_diag_sk(st.st_ino)) && !unix_in_tree(d->ino)) {
			pr_debug("unix socket %u is in flight on unix socket %u", d->ino, ino);
			unix_tree_add(d->ino);
			ret = read_queue(getpid(), m->fds[i], m->fds[i], d);
		}
	}
	return ret;
}

static int read_queue(pid_t pid, int tfd, int fd, const struct unix_diag_sk *d)
{
	struct queue *q;
	uint32_t ino = d->ino;
	int peek_off = -1;

	if (d->state == TCP_LISTEN || queue_of(d->ino))
		return 0;
	queues = xrealloc(queues, (nr_queues + 1) * sizeof(*queues));
	queues[nr_queues++] = (struct queue){.ino = d->ino, .peek_off = -1};
	/* a stream or seqpacket socket never connected has no queue (and
	 * refuses to be read) */
	if (d->type != SOCK_DGRAM && d->state != TCP_ESTABLISHED) {
		int off = -1;

		if (!unix_getint(fd, SO_PEEK_OFF, &off))
			queue_of(ino)->peek_off = off;
		return 0;
	}
	if (walk_queue(pid, tfd, fd, d, &peek_off, keep_msg, &ino))
		return -1;
	q = queue_of(ino);
	q->peek_off = peek_off;
	return 0;
}

int unix_queue_read_task(pid_t pid, int tfd)
{
	char path[64];
	const struct unix_diag_sk *d;
	struct fd_src src = {.pid = pid, .fd = tfd};
	struct stat st;
	int fd, ret;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, tfd);
	if (stat(path, &st) || !(d = unix_diag_sk(st.st_ino)) ||
	    d->state == TCP_LISTEN || queue_of(d->ino))
		return 0;
	fd = fd_src_dup(&src);
	if (fd < 0)
		return -1;
	ret = read_queue(pid, tfd, fd, d);
	close(fd);
	return ret;
}

/* ---- the queue into the checkpoint ---- */

int unix_queue_dump(const struct fd_src *src, int fd, const struct unix_diag_sk *d,
		    Stasis__UnixSk *sk)
{
	struct queue *q;

	if (read_queue(src->pid, src->fd, fd, d))
		return -1;
	q = queue_of(d->ino);
	if (q->peek_off >= 0) {
		sk->has_peek_off = true;
		sk->peek_off = q->peek_off;
	}
	sk->queue = xmalloc((q->nr + 1) * sizeof(*sk->queue));
	for (size_t i = 0; i < q->nr; i++) {
		struct queued *m = &q->msgs[i];

		sk->queue[sk->n_queue++] = m->p;
		m->p->fds = xmalloc((m->nr_fds + 1) * sizeof(*m->p->fds));
		for (size_t j = 0; j < m->nr_fds; j++) {
			if (files_describe_own(m->fds[j], &m->p->fds[j])) {
				pr_err("%s: unix socket %u has a file in flight "
				       "(SCM_RIGHTS) that stasis cannot carry",
				       unix_holder(src->pid, src->fd), d->ino);
				return -1;
			}
			m->p->n_fds++;
		}
		free(m->fds);
		m->fds = NULL;
		m->nr_fds = 0;
	}
	q->nr = 0;
	return 0;
}

