// SPDX-License-Identifier: GPL-2.0
/*
 * Unix sockets. sock_diag (one dump of the namespace's unix sockets) gives
 * what no descriptor shows: the peer, the bound name, the backlog and the
 * connections a listener has not accepted. A copy of the descriptor
 * (pidfd_getfd) gives the options and, peeking with MSG_PEEK from an
 * offset moved by SO_PEEK_OFF, the queued data without consuming it: the
 * socket is the task's own, so its peek offset is put back afterwards.
 * Files in flight (SCM_RIGHTS) come as copies and are described like the
 * tasks' own (docs/sockets.md).
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>
#include <netinet/tcp.h>

#include "collect.h"
#include "files.h"
#include "stasis/log.h"
#include "stasis/sockdiag.h"
#include "stasis/util.h"

#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD 76
#endif
/* sk_shutdown bits, as sock_diag reports them */
#define RCV_SHUTDOWN 1

/* A record is one frame (at most 4 MiB): queues stay well below. */
#define QUEUE_MAX    (3u << 20)
#define STREAM_PIECE (256u << 10)

static struct unix_diag_table diag;
static int diag_state;	    /* 0 not loaded, 1 loaded, -1 failed */
static uint32_t *tree_inos; /* sockets the tree holds, sorted */
static size_t nr_tree_inos;

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

struct task_sk {
	pid_t pid;
	int fd;
};

static struct task_sk *task_sks; /* where the tree holds them, to scan their queues */
static size_t nr_task_sks;

static void add_ino(uint32_t ino)
{
	tree_inos = xrealloc(tree_inos, (nr_tree_inos + 1) * sizeof(*tree_inos));
	tree_inos[nr_tree_inos++] = ino;
}

static void add_task_sockets(pid_t pid)
{
	char path[64], link[64], *end;
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	while (d && (de = readdir(d))) {
		char fdpath[320];
		ssize_t n;

		snprintf(fdpath, sizeof(fdpath), "%s/%s", path, de->d_name);
		n = readlink(fdpath, link, sizeof(link) - 1);
		if (n <= 8)
			continue;
		link[n] = 0;
		if (strncmp(link, "socket:[", 8))
			continue;
		add_ino(strtoul(link + 8, &end, 10));
		task_sks = xrealloc(task_sks, (nr_task_sks + 1) * sizeof(*task_sks));
		task_sks[nr_task_sks++] = (struct task_sk){pid, atoi(de->d_name)};
	}
	if (d)
		closedir(d);
}

struct task_sk;
static int scan_task_socket(const struct task_sk *ts);
static bool in_tree(uint32_t ino);

/* The namespace's unix sockets and the ones the tree holds, once. */
static bool load(void)
{
	const struct tree *t = collect_tree();

	if (diag_state)
		return diag_state > 0;
	diag_state = -1;
	if (sockdiag_unix_load(&diag))
		return false;
	for (int i = 0; i < t->nr; i++)
		if (!t->tasks[i].zombie)
			add_task_sockets(t->tasks[i].pid);
	if (nr_tree_inos)
		qsort(tree_inos, nr_tree_inos, sizeof(*tree_inos), cmp_u32);
	for (size_t i = 0; i < nr_task_sks; i++)
		if (scan_task_socket(&task_sks[i]))
			return false;
	diag_state = 1;
	return true;
}

static bool in_tree(uint32_t ino)
{
	return nr_tree_inos && bsearch(&ino, tree_inos, nr_tree_inos, sizeof(ino), cmp_u32);
}

/* --external unix[INO] names the socket of the tree whose peer is outside. */
static bool declared_external(uint32_t ino)
{
	char key[32];

	snprintf(key, sizeof(key), "unix[%u]", ino);
	for (int i = 0; i < opts.nr_external; i++)
		if (!strcmp(opts.external[i], key))
			return true;
	return false;
}

static const char *type_name(int type)
{
	return type == SOCK_STREAM ? "stream" : type == SOCK_DGRAM ? "datagram" : "seqpacket";
}

/* A name as a message shows it: abstract names with '@'. */
static const char *show_name(const char *name, size_t len, char *buf, size_t size)
{
	if (!len)
		return "(unnamed)";
	if (name[0])
		snprintf(buf, size, "%.*s", (int)strnlen(name, len), name);
	else
		snprintf(buf, size, "@%.*s", (int)len - 1, name + 1);
	return buf;
}

static bool match(const struct fd_src *src)
{
	return S_ISSOCK(src->st.st_mode) && load() && sockdiag_unix_find(&diag, src->st.st_ino);
}

static void set_bytes(ProtobufCBinaryData *b, const void *data, size_t len)
{
	b->data = xmalloc(len + 1);
	memcpy(b->data, data, len);
	b->len = len;
}

/* The socket file of d at path, if that is the one it is bound to. */
static bool own_file(const struct unix_diag_sk *d, const char *path, struct stat *st)
{
	return d->has_vfs && !stat(path, st) && S_ISSOCK(st->st_mode) && st->st_ino == d->vfs_ino &&
	       st->st_dev == d->vfs_dev;
}

/* The working directory of pid, "" if unknown. */
static void task_cwd(pid_t pid, char *dir, size_t size)
{
	char link[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/%d/cwd", pid);
	n = readlink(link, dir, size - 1);
	dir[n > 0 ? n : 0] = 0;
}

/*
 * Path names: a relative one resolves in the working directory of the
 * task that bound it, which may since have moved (or be another task): the
 * holder's, then every other task's working directory is tried. A name
 * whose file is gone (or another file now) is bound and removed.
 */
static void path_name(const struct fd_src *src, const struct unix_diag_sk *d, Stasis__UnixSk *sk)
{
	char path[PATH_MAX + 110], dir[PATH_MAX];
	size_t len = strnlen(d->name, d->namelen);
	bool found;
	struct stat st;

	if (d->name[0] == '/') {
		snprintf(path, sizeof(path), "%.*s", (int)len, d->name);
		found = own_file(d, path, &st);
	} else {
		const struct tree *t = collect_tree();

		task_cwd(src->pid, dir, sizeof(dir));
		sk->name_dir = xstrdup(dir[0] ? dir : "/");
		snprintf(path, sizeof(path), "%s/%.*s", sk->name_dir, (int)len, d->name);
		found = own_file(d, path, &st);
		for (int i = 0; !found && i < t->nr; i++) {
			if (t->tasks[i].zombie || t->tasks[i].pid == src->pid)
				continue;
			task_cwd(t->tasks[i].pid, dir, sizeof(dir));
			snprintf(path, sizeof(path), "%s/%.*s", dir, (int)len, d->name);
			if (dir[0] && (found = own_file(d, path, &st))) {
				free(sk->name_dir);
				sk->name_dir = xstrdup(dir);
			}
		}
	}
	if (found) {
		sk->has_file_mode = sk->has_file_uid = sk->has_file_gid = true;
		sk->file_mode = st.st_mode & 07777;
		sk->file_uid = st.st_uid;
		sk->file_gid = st.st_gid;
	} else {
		sk->has_name_deleted = sk->name_deleted = true;
	}
}

/* The listener an accepted socket came from: a listener with its name. */
static const struct unix_diag_sk *listener_by_name(const struct unix_diag_sk *d)
{
	const struct unix_diag_sk *found = NULL;

	for (size_t i = 0; i < diag.nr; i++) {
		const struct unix_diag_sk *l = &diag.sks[i];

		if (l->state != TCP_LISTEN || l->namelen != d->namelen ||
		    memcmp(l->name, d->name, d->namelen) || l->type != d->type)
			continue;
		if (d->has_vfs &&
		    (!l->has_vfs || l->vfs_ino != d->vfs_ino || l->vfs_dev != d->vfs_dev))
			continue;
		if (!found || in_tree(l->ino))
			found = l;
	}
	return found;
}

static int outside_peer(const struct fd_src *src, const struct unix_diag_sk *d,
			const struct unix_diag_sk *peer, uint32_t peer_ino, Stasis__UnixSk *sk)
{
	char buf[128];

	if (!declared_external(d->ino)) {
		pr_err(
		    "fd %d of task %d: unix %s socket %u is connected to socket %u%s%s, which is "
		    "outside the tree; dump with --external unix[%u] to restore it without it",
		    src->fd, src->pid, type_name(d->type), d->ino, peer_ino,
		    peer && peer->namelen ? " " : "",
		    peer && peer->namelen ? show_name(peer->name, peer->namelen, buf, sizeof(buf))
					  : "",
		    d->ino);
		return -1;
	}
	sk->has_external = sk->external = true;
	if (peer && peer->namelen && (peer->name[0] || peer->namelen > 1)) {
		sk->has_peer_name = true;
		set_bytes(&sk->peer_name, peer->name,
			  peer->name[0] ? strnlen(peer->name, peer->namelen) : peer->namelen);
	}
	pr_info("unix socket %u of task %d: peer %u is outside the tree (--external)", d->ino,
		src->pid, peer_ino);
	return 0;
}

static int connection(const struct fd_src *src, const struct unix_diag_sk *d, Stasis__UnixSk *sk)
{
	const struct unix_diag_sk *l;

	if (d->state == TCP_LISTEN) {
		sk->has_backlog = true;
		sk->backlog = d->wqueue;
		for (size_t i = 0; i < d->nr_icons; i++) {
			if (in_tree(d->icons[i])) {
				sk->icons =
				    xrealloc(sk->icons, (sk->n_icons + 1) * sizeof(uint32_t));
				sk->icons[sk->n_icons++] = d->icons[i];
			} else if (declared_external(d->ino)) {
				pr_warn("unix socket %u of task %d: the connection from socket %u "
					"outside "
					"the tree, not accepted yet, is dropped (--external)",
					d->ino, src->pid, d->icons[i]);
			} else {
				pr_err("fd %d of task %d: listening unix socket %u has a "
				       "connection from "
				       "socket %u outside the tree, not accepted yet; dump with "
				       "--external unix[%u] to drop it",
				       src->fd, src->pid, d->ino, d->icons[i], d->ino);
				return -1;
			}
		}
		return 0;
	}
	if (!d->has_peer)
		return 0;
	if (d->peer) {
		if (!in_tree(d->peer))
			return outside_peer(src, d, sockdiag_unix_find(&diag, d->peer), d->peer,
					    sk);
		sk->has_peer = true;
		sk->peer = d->peer;
		if (d->namelen && d->type != SOCK_DGRAM && (l = listener_by_name(d)) &&
		    in_tree(l->ino)) {
			sk->has_listener = true;
			sk->listener = l->ino;
		}
		return 0;
	}
	/* no peer inode: closed, or a connection no one accepted yet */
	l = sockdiag_unix_listener_of(&diag, d->ino);
	if (!l) {
		sk->has_peer = true;
		sk->peer = 0;
		return 0;
	}
	if (d->wqueue) {
		pr_err(
		    "fd %d of task %d: unix socket %u sent data on a connection socket %u has not "
		    "accepted yet, which cannot be read without consuming it",
		    src->fd, src->pid, d->ino, l->ino);
		return -1;
	}
	sk->has_pending_on = true;
	sk->pending_on = l->ino;
	if (!in_tree(l->ino))
		return outside_peer(src, d, l, l->ino, sk);
	return 0;
}

static int getint(int fd, int opt, int *val)
{
	socklen_t len = sizeof(*val);

	return getsockopt(fd, SOL_SOCKET, opt, val, &len);
}

static void options(int fd, Stasis__UnixSk *sk)
{
	struct timeval tv;
	socklen_t len;
	int v;

	if (!getint(fd, SO_SNDBUF, &v)) {
		sk->has_sndbuf = true;
		sk->sndbuf = v;
	}
	if (!getint(fd, SO_RCVBUF, &v)) {
		sk->has_rcvbuf = true;
		sk->rcvbuf = v;
	}
	if (!getint(fd, SO_PASSCRED, &v) && v)
		sk->has_passcred = sk->passcred = true;
	if (!getint(fd, SO_PASSSEC, &v) && v)
		sk->has_passsec = sk->passsec = true;
	if (!getint(fd, SO_PASSPIDFD, &v) && v)
		sk->has_passpidfd = sk->passpidfd = true;
	len = sizeof(tv);
	if (!getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) && (tv.tv_sec || tv.tv_usec)) {
		sk->has_rcvtimeo_us = true;
		sk->rcvtimeo_us = tv.tv_sec * 1000000ull + tv.tv_usec;
	}
	len = sizeof(tv);
	if (!getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &len) && (tv.tv_sec || tv.tv_usec)) {
		sk->has_sndtimeo_us = true;
		sk->sndtimeo_us = tv.tv_sec * 1000000ull + tv.tv_usec;
	}
}

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

	if (getint(fd, SO_PEEK_OFF, &saved) || setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &off, 4)) {
		pr_perror("fd %d of task %d: cannot use SO_PEEK_OFF", tfd, pid);
		free(buf);
		return -1;
	}
	if (peek_off)
		*peek_off = saved;
	if (getint(fd, SO_PASSCRED, &passcred) ||
	    (!passcred && setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)))) {
		pr_perror("fd %d of task %d: cannot use SO_PASSCRED", tfd, pid);
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
			pr_err("fd %d of task %d: the queue of unix socket %u does not end", tfd,
			       pid, d->ino);
			goto out;
		}
		if (n < 0) {
			if (errno == EAGAIN)
				break;
			pr_perror("fd %d of task %d: cannot peek at the queue of unix socket %u",
				  tfd, pid, d->ino);
			goto out;
		}
		if (control(&mh, &m, fds)) {
			close_fds(&m);
			pr_err("fd %d of task %d: unix socket %u has a message with more "
			       "descriptors in flight than a peek can receive",
			       tfd, pid, d->ino);
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
			    "fd %d of task %d: unix socket %u has more than %u bytes queued, more "
			    "than a checkpoint record can hold",
			    tfd, pid, d->ino, QUEUE_MAX);
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
		    "fd %d of task %d: read %zu bytes queued on unix socket %u, the kernel says %u",
		    tfd, pid, total, d->ino, d->rqueue);
		goto out;
	}
	ret = 0;
out:
	if (!passcred && setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &passcred, sizeof(passcred))) {
		pr_perror("fd %d of task %d: cannot put back SO_PASSCRED", tfd, pid);
		ret = -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &saved, 4)) {
		pr_perror("fd %d of task %d: cannot put back the peek offset", tfd, pid);
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
	set_bytes(&p->data, m->data, m->len);
	if (m->alen) {
		p->has_addr = true;
		set_bytes(&p->addr, m->addr, m->alen);
	}
	/* pid 0: the kernel kept none (no SO_PASSCRED on either side at the send) */
	if (m->has_cred && m->cred.pid) {
		p->has_cred_pid = p->has_cred_uid = p->has_cred_gid = true;
		p->cred_pid = m->cred.pid;
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
		    (d = sockdiag_unix_find(&diag, st.st_ino)) && !in_tree(d->ino)) {
			pr_debug("unix socket %u is in flight on unix socket %u", d->ino, ino);
			add_ino(d->ino);
			qsort(tree_inos, nr_tree_inos, sizeof(*tree_inos), cmp_u32);
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

		if (!getint(fd, SO_PEEK_OFF, &off))
			queue_of(ino)->peek_off = off;
		return 0;
	}
	if (walk_queue(pid, tfd, fd, d, &peek_off, keep_msg, &ino))
		return -1;
	q = queue_of(ino);
	q->peek_off = peek_off;
	return 0;
}

static int scan_task_socket(const struct task_sk *ts)
{
	char path[64];
	const struct unix_diag_sk *d;
	struct fd_src src = {.pid = ts->pid, .fd = ts->fd};
	struct stat st;
	int fd, ret;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", ts->pid, ts->fd);
	if (stat(path, &st) || !(d = sockdiag_unix_find(&diag, st.st_ino)) ||
	    d->state == TCP_LISTEN || queue_of(d->ino))
		return 0;
	fd = fd_src_dup(&src);
	if (fd < 0)
		return -1;
	ret = read_queue(ts->pid, ts->fd, fd, d);
	close(fd);
	return ret;
}

/* ---- the queue into the checkpoint ---- */

/* A file in flight stasis cannot carry: refused with the socket's task. */
static bool flight_refused(const struct fd_src *src, uint32_t ino, int fd)
{
	char path[64], link[128];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	/* its targets are descriptor numbers of a task, which it is in none of */
	if (!strcmp(link, "anon_inode:[eventpoll]")) {
		pr_err("fd %d of task %d: unix socket %u has an epoll instance in flight "
		       "(SCM_RIGHTS), which stasis cannot carry",
		       src->fd, src->pid, ino);
		return true;
	}
	return false;
}

static int dump_queue(const struct fd_src *src, int fd, const struct unix_diag_sk *d,
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
			if (flight_refused(src, d->ino, m->fds[j]) ||
			    files_describe_own(m->fds[j], &m->p->fds[j])) {
				pr_err("fd %d of task %d: cannot dump the files in flight on unix "
				       "socket %u",
				       src->fd, src->pid, d->ino);
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

static int dump(const struct fd_src *src, Stasis__FileEntry *fe)
{
	const struct unix_diag_sk *d = sockdiag_unix_find(&diag, src->st.st_ino);
	Stasis__UnixSk *sk = xmalloc(sizeof(*sk));
	int fd, ret;

	stasis__unix_sk__init(sk);
	fe->type = STASIS__FD_TYPE__UNIXSK;
	fe->unixsk = sk;
	sk->ino = d->ino;
	sk->type = d->type;
	sk->state = d->state;
	if (d->type != SOCK_STREAM && d->type != SOCK_DGRAM && d->type != SOCK_SEQPACKET) {
		pr_err("fd %d of task %d: unix socket %u has type %d", src->fd, src->pid, d->ino,
		       d->type);
		return -1;
	}
	if (d->namelen && (d->name[0] || d->namelen > 1)) {
		sk->has_name = true;
		set_bytes(&sk->name, d->name,
			  d->name[0] ? strnlen(d->name, d->namelen) : d->namelen);
		if (d->name[0])
			path_name(src, d, sk);
	}
	if (d->shutdown) {
		sk->has_shutdown = true;
		sk->shutdown = d->shutdown;
	}
	if (connection(src, d, sk))
		return -1;
	fd = fd_src_dup(src);
	if (fd < 0)
		return -1;
	options(fd, sk);
	ret = d->state == TCP_LISTEN ? 0 : dump_queue(src, fd, d, sk);
	close(fd);
	pr_debug("unix %s socket %u of task %d: state %u peer %u, %zu packets queued",
		 type_name(d->type), d->ino, src->pid, d->state, sk->peer, sk->n_queue);
	return ret;
}

const struct fd_dump_ops unixsk_dump_ops = {"unix socket", match, dump};
