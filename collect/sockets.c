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
#include <sys/resource.h>
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
#include "unix.h"

#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD 76
#endif
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

void unix_tree_add(uint32_t ino)
{
	add_ino(ino);
	qsort(tree_inos, nr_tree_inos, sizeof(*tree_inos), cmp_u32);
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

/* The namespace's unix sockets and the ones the tree holds, once. */
static bool load(void)
{
	const struct tree *t = collect_tree();
	struct rlimit rl;

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
	/* every file in flight stays open here until the end (see files.c) */
	if (nr_task_sks && !getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	for (size_t i = 0; i < nr_task_sks; i++)
		if (unix_queue_read_task(task_sks[i].pid, task_sks[i].fd))
			return false;
	diag_state = 1;
	return true;
}

bool unix_in_tree(uint32_t ino)
{
	return nr_tree_inos && bsearch(&ino, tree_inos, nr_tree_inos, sizeof(ino), cmp_u32);
}

/* --external unix[INO] names the socket of the tree whose peer is outside. */
static bool declared_external(uint32_t ino)
{
	char key[32];

	if (opts.ext_unix_sk)
		return true;
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

const char *unix_holder(pid_t pid, int fd)
{
	static char buf[64];

	if (pid == getpid())
		snprintf(buf, sizeof(buf), "a unix socket in flight");
	else
		snprintf(buf, sizeof(buf), "fd %d of task %d", fd, pid);
	return buf;
}

const struct unix_diag_sk *unix_diag_sk(uint32_t ino)
{
	return sockdiag_unix_find(&diag, ino);
}

static bool match(const struct fd_src *src)
{
	return S_ISSOCK(src->st.st_mode) && load() && sockdiag_unix_find(&diag, src->st.st_ino);
}

void unix_set_bytes(ProtobufCBinaryData *b, const void *data, size_t len)
{
	b->data = xmalloc(len + 1);
	memcpy(b->data, data, len);
	b->len = len;
}

/* The socket file of d at path, if that is the one it is bound to. */
static bool own_file(pid_t pid, const struct unix_diag_sk *d, const char *path, struct stat *st)
{
	char buf[PATH_MAX + 32];

	return d->has_vfs && !stat(mntns_path(pid, path, buf, sizeof(buf)), st) &&
	       S_ISSOCK(st->st_mode) && st->st_ino == d->vfs_ino && st->st_dev == d->vfs_dev;
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
		found = own_file(src->pid, d, path, &st);
	} else {
		const struct tree *t = collect_tree();

		task_cwd(src->pid, dir, sizeof(dir));
		sk->name_dir = xstrdup(dir[0] ? dir : "/");
		snprintf(path, sizeof(path), "%s/%.*s", sk->name_dir, (int)len, d->name);
		found = own_file(src->pid, d, path, &st);
		for (int i = 0; !found && i < t->nr; i++) {
			if (t->tasks[i].zombie || t->tasks[i].pid == src->pid)
				continue;
			task_cwd(t->tasks[i].pid, dir, sizeof(dir));
			snprintf(path, sizeof(path), "%s/%.*s", dir, (int)len, d->name);
			if (dir[0] && (found = own_file(t->tasks[i].pid, d, path, &st))) {
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
		if (!found || unix_in_tree(l->ino))
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
		    "%s: unix %s socket %u is connected to socket %u%s%s, which is "
		    "outside the tree; dump with --external unix[%u] to restore it without it",
		    unix_holder(src->pid, src->fd), type_name(d->type), d->ino, peer_ino,
		    peer && peer->namelen ? " " : "",
		    peer && peer->namelen ? show_name(peer->name, peer->namelen, buf, sizeof(buf))
					  : "",
		    d->ino);
		return -1;
	}
	sk->has_external = sk->external = true;
	if (peer && peer->namelen && (peer->name[0] || peer->namelen > 1)) {
		sk->has_peer_name = true;
		unix_set_bytes(&sk->peer_name, peer->name,
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
			if (unix_in_tree(d->icons[i])) {
				sk->icons =
				    xrealloc(sk->icons, (sk->n_icons + 1) * sizeof(uint32_t));
				sk->icons[sk->n_icons++] = d->icons[i];
			} else if (declared_external(d->ino)) {
				pr_warn("unix socket %u of task %d: the connection from socket %u "
					"outside "
					"the tree, not accepted yet, is dropped (--external)",
					d->ino, src->pid, d->icons[i]);
			} else {
				pr_err("%s: listening unix socket %u has a "
				       "connection from "
				       "socket %u outside the tree, not accepted yet; dump with "
				       "--external unix[%u] to drop it",
				       unix_holder(src->pid, src->fd), d->ino, d->icons[i], d->ino);
				return -1;
			}
		}
		return 0;
	}
	if (!d->has_peer)
		return 0;
	if (d->peer) {
		if (!unix_in_tree(d->peer))
			return outside_peer(src, d, sockdiag_unix_find(&diag, d->peer), d->peer,
					    sk);
		sk->has_peer = true;
		sk->peer = d->peer;
		if (d->namelen && d->type != SOCK_DGRAM && (l = listener_by_name(d)) &&
		    unix_in_tree(l->ino)) {
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
		    "%s: unix socket %u sent data on a connection socket %u has not "
		    "accepted yet, which cannot be read without consuming it",
		    unix_holder(src->pid, src->fd), d->ino, l->ino);
		return -1;
	}
	sk->has_pending_on = true;
	sk->pending_on = l->ino;
	if (!unix_in_tree(l->ino))
		return outside_peer(src, d, l, l->ino, sk);
	return 0;
}

int unix_getint(int fd, int opt, int *val)
{
	socklen_t len = sizeof(*val);

	return getsockopt(fd, SOL_SOCKET, opt, val, &len);
}

static void options(int fd, Stasis__UnixSk *sk)
{
	struct ucred cred;
	struct timeval tv;
	socklen_t len;
	int v;

	if (!unix_getint(fd, SO_SNDBUF, &v)) {
		sk->has_sndbuf = true;
		sk->sndbuf = v;
	}
	if (!unix_getint(fd, SO_RCVBUF, &v)) {
		sk->has_rcvbuf = true;
		sk->rcvbuf = v;
	}
	if (!unix_getint(fd, SO_PASSCRED, &v) && v)
		sk->has_passcred = sk->passcred = true;
	if (!unix_getint(fd, SO_PASSSEC, &v) && v)
		sk->has_passsec = sk->passsec = true;
	if (!unix_getint(fd, SO_PASSPIDFD, &v) && v)
		sk->has_passpidfd = sk->passpidfd = true;
	len = sizeof(cred);
	if (!getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) && cred.pid > 0) {
		sk->has_peer_cred_pid = sk->has_peer_cred_uid = sk->has_peer_cred_gid = true;
		sk->peer_cred_pid = pidns_vpid(cred.pid);
		sk->peer_cred_uid = cred.uid;
		sk->peer_cred_gid = cred.gid;
	}
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
		pr_err("%s: unix socket %u has type %d", unix_holder(src->pid, src->fd), d->ino,
		       d->type);
		return -1;
	}
	if (d->namelen && (d->name[0] || d->namelen > 1)) {
		sk->has_name = true;
		unix_set_bytes(&sk->name, d->name,
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
	ret = d->state == TCP_LISTEN ? 0 : unix_queue_dump(src, fd, d, sk);
	close(fd);
	pr_debug("unix %s socket %u of task %d: state %u peer %u, %zu packets queued",
		 type_name(d->type), d->ino, src->pid, d->state, sk->peer, sk->n_queue);
	return ret;
}

const struct fd_dump_ops unixsk_dump_ops = {"unix socket", match, dump};
