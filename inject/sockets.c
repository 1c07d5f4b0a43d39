// SPDX-License-Identifier: GPL-2.0
/*
 * Unix sockets on restore. The first unix socket to open builds all of
 * them at once in stasis-inject, because they name each other: a pair
 * inside the tree is made by socketpair(), an accepted connection by
 * connecting to its restored listener and accepting, a connection not yet
 * accepted by connecting in queue order, a datagram socket connected to a
 * bound one by connect(). Files in flight in the queues are opened then
 * too. Each socket waits, above every staging number, until its open()
 * call. Once the tree's tasks exist (the senders that credentials name),
 * unixsk_restore_queues() sends the queued data from the peer's side, with
 * its files and credentials, before the connections that would refuse it,
 * then sets shutdown state and options (docs/sockets.md).
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <linux/sched.h>
#include <netinet/tcp.h>

#include "files.h"
#include "stasis/log.h"
#include "stasis/util.h"
#include "unix.h"

#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD 76
#endif
#define RCV_SHUTDOWN  1
#define SEND_SHUTDOWN 2

struct usk *usks;
size_t nr_usks;
static int built; /* 0 not yet, 1 made, 2 queues filled, -1 failed */

static struct usk *find(uint32_t ino)
{
	for (size_t i = 0; i < nr_usks; i++)
		if (usks[i].sk->ino == ino)
			return &usks[i];
	return NULL;
}

/* Where u's peer sends from: the other end of its pair, if it has one. */
int unix_pair_fd(struct usk *u)
{
	return u->twin ? u->twin->fd : u->tmp;
}

/* The in-tree peer, if any (NULL for a closed or outside peer). */
static struct usk *peer_of(struct usk *u)
{
	return u->sk->has_peer && u->sk->peer && !u->sk->external ? find(u->sk->peer) : NULL;
}

/* Connected to each other (a datagram socket connected to itself is not a
 * pair: it is connected by its own name). */
static bool mutual(struct usk *u, struct usk *p)
{
	return p && p != u && p->sk->has_peer && p->sk->peer == u->sk->ino && !p->sk->external;
}

static const char *type_name(uint32_t type)
{
	return type == SOCK_STREAM ? "stream" : type == SOCK_DGRAM ? "datagram" : "seqpacket";
}

static const char *show(const ProtobufCBinaryData *n, char *buf, size_t size)
{
	if (!n->len)
		return "(unnamed)";
	if (n->data[0])
		snprintf(buf, size, "%.*s", (int)n->len, (char *)n->data);
	else
		snprintf(buf, size, "@%.*s", (int)n->len - 1, (char *)n->data + 1);
	return buf;
}

/* The address that reaches u: its socket file through /proc for a path
 * (which also works for deleted and relative names), else its name. */
socklen_t unix_addr_of(struct usk *u, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (u->reach >= 0) {
		snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d", u->reach);
		return offsetof(struct sockaddr_un, sun_path) + strlen(sa->sun_path) + 1;
	}
	if (!u->sk->has_name || u->sk->name.len > sizeof(sa->sun_path))
		return 0;
	memcpy(sa->sun_path, u->sk->name.data, u->sk->name.len);
	return offsetof(struct sockaddr_un, sun_path) + u->sk->name.len;
}

static socklen_t name_addr(const ProtobufCBinaryData *n, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (!n->len || n->len >= sizeof(sa->sun_path))
		return 0;
	memcpy(sa->sun_path, n->data, n->len);
	return offsetof(struct sockaddr_un, sun_path) + n->len + (n->data[0] ? 1 : 0);
}

/* ---- --inherit-fd fd[N]:socket:[INO] (also socket[INO], unix[INO]) ---- */

static int inherited_fd(uint32_t ino)
{
	char keys[3][40];

	snprintf(keys[0], sizeof(keys[0]), "socket:[%u]", ino);
	snprintf(keys[1], sizeof(keys[1]), "socket[%u]", ino);
	snprintf(keys[2], sizeof(keys[2]), "unix[%u]", ino);
	for (int i = 0; i < opts.nr_inherit_fds; i++)
		for (int k = 0; k < 3; k++)
			if (!strcmp(opts.inherit_fds[i].res, keys[k]))
				return opts.inherit_fds[i].fd;
	return -1;
}

/* ---- making the sockets ---- */

static int new_socket(struct usk *u)
{
	u->fd = socket(AF_UNIX, u->sk->type | SOCK_CLOEXEC, 0);
	if (u->fd < 0)
		pr_perror("cannot create a unix %s socket", type_name(u->sk->type));
	return u->fd < 0 ? -1 : 0;
}

/* What a helper does as the process SO_PEERCRED is to name. */
struct as_call {
	int fd;
	int backlog;		/* listen(), when sa is NULL */
	struct sockaddr_un *sa; /* connect() */
	socklen_t len;
};

/*
 * Runs listen() or connect() on the socket (shared with it) in a helper
 * with the PID and effective ids that sk's SO_PEERCRED names: 0 when done
 * there, -1 when the caller is to do it itself.
 */
static int call_as(const Stasis__UnixSk *sk, const struct as_call *call)
{
	pid_t want = sk->peer_cred_pid, child;
	struct clone_args args = {.exit_signal = SIGCHLD,
				  .set_tid = (uint64_t)(uintptr_t)&want,
				  .set_tid_size = 1};
	int status = 0;

	if (!sk->has_peer_cred_pid || !sk->peer_cred_pid)
		return -1;
	/* the helper would be outside the tree's PID namespace (made later) */
	if (pstree_in_pidns()) {
		pr_warn("unix socket %u: in a PID namespace SO_PEERCRED names stasis-inject (PID 0 "
			"inside), not PID %u",
			sk->ino, sk->peer_cred_pid);
		return -1;
	}
	child = syscall(SYS_clone3, &args, sizeof(args));
	if (!child) {
		int r;

		/* dumpable again, for /proc/self/fd names under the new ids */
		if (setresgid(-1, sk->peer_cred_gid, -1) || setresuid(-1, sk->peer_cred_uid, -1) ||
		    prctl(PR_SET_DUMPABLE, 1))
			_exit(1);
		r = call->sa ? connect(call->fd, (struct sockaddr *)call->sa, call->len)
			     : listen(call->fd, call->backlog);
		_exit(r ? 1 : 0);
	}
	if (child < 0)
		return -1;
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -1;
}

/* Both ends named the same maker of their pair (SO_PEERCRED). */
static bool same_maker(const Stasis__UnixSk *a, const Stasis__UnixSk *b)
{
	return a->has_peer_cred_pid && a->peer_cred_pid && (!b || (b->has_peer_cred_pid &&
	       b->peer_cred_pid == a->peer_cred_pid && b->peer_cred_uid == a->peer_cred_uid &&
	       b->peer_cred_gid == a->peer_cred_gid));
}

/*
 * A pair made by a helper process with the maker's PID (clone3 set_tid:
 * before the tree exists its PIDs are free) and effective ids, so that
 * SO_PEERCRED names the maker, as it did. 0, or -1: the caller makes it.
 */
static int pair_as_maker(const Stasis__UnixSk *sk, int sv[2])
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(2 * sizeof(int))];
	} ctl;
	pid_t want = sk->peer_cred_pid, child;
	struct clone_args args = {.exit_signal = SIGCHLD,
				  .set_tid = (uint64_t)(uintptr_t)&want,
				  .set_tid_size = 1};
	char byte = 0;
	struct iovec iov = {&byte, 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			    .msg_controllen = sizeof(ctl.buf)};
	struct cmsghdr *c = (struct cmsghdr *)ctl.buf;
	int chan[2], status = 0, ret = -1;

	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, chan))
		return -1;
	/* the helper would be outside the tree's PID namespace (made later) */
	child = pstree_in_pidns() ? -1 : syscall(SYS_clone3, &args, sizeof(args));
	if (!child) {
		int s[2];

		if (setresgid(-1, sk->peer_cred_gid, -1) || setresuid(-1, sk->peer_cred_uid, -1) ||
		    socketpair(AF_UNIX, sk->type | SOCK_CLOEXEC, 0, s))
			_exit(1);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(2 * sizeof(int));
		memcpy(CMSG_DATA(c), s, 2 * sizeof(int));
		_exit(sendmsg(chan[1], &mh, 0) == 1 ? 0 : 1);
	}
	close(chan[1]);
	if (child > 0) {
		while (waitpid(child, &status, 0) < 0 && errno == EINTR)
			;
		if (WIFEXITED(status) && !WEXITSTATUS(status) &&
		    recvmsg(chan[0], &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) == 1 &&
		    (c = CMSG_FIRSTHDR(&mh)) && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(2 * sizeof(int))) {
			memcpy(sv, CMSG_DATA(c), 2 * sizeof(int));
			ret = 0;
		}
	}
	close(chan[0]);
	if (ret)
		pr_warn("unix socket %u: its pair cannot be made by PID %u (uid %u gid %u); "
			"SO_PEERCRED names stasis-inject instead",
			sk->ino, sk->peer_cred_pid, sk->peer_cred_uid, sk->peer_cred_gid);
	return ret;
}

/* u and p (or a temporary end when p is NULL) as the two ends of a pair. */
static int new_pair(struct usk *u, struct usk *p)
{
	int sv[2];

	if ((!same_maker(u->sk, p ? p->sk : NULL) || pair_as_maker(u->sk, sv)) &&
	    socketpair(AF_UNIX, u->sk->type | SOCK_CLOEXEC, 0, sv)) {
		pr_perror("cannot create a unix %s socket pair", type_name(u->sk->type));
		return -1;
	}
	u->fd = sv[0];
	if (p) {
		p->fd = sv[1];
		u->twin = p;
		p->twin = u;
	} else {
		u->tmp = sv[1];
	}
	return 0;
}

/* A peer closed or outside the tree (without --inherit-fd): the socket is
 * one end of a pair whose other end is closed once its queue is in. */
static bool orphan(struct usk *u)
{
	Stasis__UnixSk *sk = u->sk;

	if (sk->has_pending_on && !sk->external)
		return false;
	if (sk->external)
		/* outside peers with a name: connected again by that name */
		return !(sk->has_peer_name && (sk->type == SOCK_DGRAM || sk->has_pending_on));
	if (!sk->has_peer)
		return false;
	return !sk->peer || !find(sk->peer) || find(sk->peer)->inherited;
}

static int create(struct usk *u)
{
	struct usk *p = peer_of(u);

	if (u->fd >= 0 || u->accepted)
		return 0;
	if (u->sk->state == TCP_LISTEN)
		return new_socket(u);
	if (orphan(u)) {
		if (u->sk->external)
			pr_warn("unix socket %u: its peer was outside the tree; it is restored "
				"disconnected (use --inherit-fd fd[N]:socket:[%u] to give it one)",
				u->sk->ino, u->sk->ino);
		return new_pair(u, NULL);
	}
	/* an accepted connection and its client: made through the listener */
	if (p && mutual(u, p) && (u->sk->has_listener || p->sk->has_listener) &&
	    find(u->sk->has_listener ? u->sk->listener : p->sk->listener)) {
		struct usk *s = u->sk->has_listener ? u : p;

		if (find(s->sk->listener)->sk->state == TCP_LISTEN &&
		    !find(s->sk->listener)->inherited) {
			s->accepted = true;
			return s == u ? 0 : new_socket(u);
		}
	}
	if (p && mutual(u, p) && p->fd < 0)
		return new_pair(u, p);
	if (p && u->sk->type != SOCK_DGRAM)
		pr_warn("unix socket %u: its peer %u is not connected to it; it is restored "
			"unconnected",
			u->sk->ino, p->sk->ino);
	return new_socket(u);
}

/* A socket file that a live socket still uses (not a stale one). */
static bool path_in_use(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), r;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	r = connect(s, (struct sockaddr *)&sa, sizeof(sa));
	r = r == 0 || errno == EAGAIN || errno == EPROTOTYPE;
	close(s);
	return r;
}

/* The missing directories above path, made (0700): how many, or -1. */
static int make_dirs(const char *path)
{
	char dir[PATH_MAX];
	int made = 0;

	snprintf(dir, sizeof(dir), "%s", path);
	for (char *p = strchr(dir + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = 0;
		if (!mkdir(dir, 0700))
			made++;
		else if (errno != EEXIST)
			return -1;
		*p = '/';
	}
	return made;
}

/* Removes the last made directories above path, deepest first. */
static void remove_dirs(const char *path, int made)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s", path);
	for (; made > 0; made--) {
		char *p = strrchr(dir, '/');

		if (!p || p == dir)
			return;
		*p = 0;
		if (rmdir(dir))
			pr_warn("cannot remove the directory %s made for a bind: %m", dir);
	}
}

/*
 * Binds u to its path name, in its directory for a relative name. A name
 * whose file was gone at the dump is bound with any file there moved
 * aside meanwhile, then removed; its O_PATH descriptor still reaches it.
 */
static int bind_path(struct usk *u)
{
	Stasis__UnixSk *sk = u->sk;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char aside[PATH_MAX], cwd_show[PATH_MAX];
	const char *name = sa.sun_path;
	bool moved = false;
	struct stat st;
	int cwd = -1, ret = -1, made = 0;

	if (sk->name.len >= sizeof(sa.sun_path)) {
		pr_err("unix socket %u: its name is too long", sk->ino);
		return -1;
	}
	memcpy(sa.sun_path, sk->name.data, sk->name.len);
	snprintf(cwd_show, sizeof(cwd_show), "%s%s%s", sk->name_dir ? sk->name_dir : "",
		 sk->name_dir ? "/" : "", name);
	if (sk->name_dir) {
		cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (cwd < 0 || chdir(sk->name_dir)) {
			pr_perror("unix socket %u: cannot enter %s to bind %s", sk->ino,
				  sk->name_dir, name);
			goto out;
		}
	}
	if (!lstat(name, &st)) {
		if (sk->name_deleted) {
			snprintf(aside, sizeof(aside), "%s.stasis-aside.%d", name, getpid());
			if (rename(name, aside)) {
				pr_perror("unix socket %u: cannot move %s aside", sk->ino,
					  cwd_show);
				goto out;
			}
			moved = true;
		} else if (!S_ISSOCK(st.st_mode)) {
			pr_err(
			    "unix socket %u: cannot bind %s: a file that is not a socket is there",
			    sk->ino, cwd_show);
			goto out;
		} else if (path_in_use(name)) {
			/* a connection's name is its listener's, which lives on */
			if (sk->type != SOCK_DGRAM && sk->state != TCP_LISTEN &&
			    (sk->has_peer || sk->external)) {
				pr_warn("unix socket %u: %s is its listener's, which is still in "
					"use; the restored socket has no name",
					sk->ino, cwd_show);
				ret = 0;
				goto out;
			}
			pr_err("unix socket %u: cannot bind %s: a live socket uses that name",
			       sk->ino, cwd_show);
			goto out;
		} else if (unlink(name)) {
			pr_perror("unix socket %u: cannot remove the stale socket file %s", sk->ino,
				  cwd_show);
			goto out;
		}
	}
	/* a deleted name's directory may be gone too: made for the bind */
	if (bind(u->fd, (struct sockaddr *)&sa,
		 offsetof(struct sockaddr_un, sun_path) + sk->name.len + 1) &&
	    (errno != ENOENT || !sk->name_deleted || (made = make_dirs(name)) < 0 ||
	     bind(u->fd, (struct sockaddr *)&sa,
		  offsetof(struct sockaddr_un, sun_path) + sk->name.len + 1))) {
		pr_perror("unix socket %u: cannot bind %s", sk->ino, cwd_show);
		remove_dirs(name, made);
		goto back;
	}
	u->reach = open(name, O_PATH | O_CLOEXEC);
	if (u->reach < 0)
		pr_perror("unix socket %u: cannot open its socket file %s", sk->ino, cwd_show);
	if (sk->name_deleted) {
		unlink(name);
		remove_dirs(name, made);
	} else {
		char abs[PATH_MAX];

		if (sk->has_file_mode && chmod(name, sk->file_mode))
			pr_warn("unix socket %u: cannot chmod %s: %m", sk->ino, cwd_show);
		if (sk->has_file_uid && lchown(name, sk->file_uid, sk->file_gid))
			pr_warn("unix socket %u: cannot chown %s: %m", sk->ino, cwd_show);
		if (realpath(name, abs))
			u->file = xstrdup(abs);
	}
	ret = u->reach < 0 ? -1 : 0;
back:
	if (moved && rename(aside, name))
		pr_perror("unix socket %u: cannot move %s back", sk->ino, cwd_show);
out:
	if (cwd >= 0) {
		if (fchdir(cwd))
			pr_perror("cannot go back to the working directory");
		close(cwd);
	}
	return ret;
}

static int bind_name(struct usk *u)
{
	Stasis__UnixSk *sk = u->sk;
	struct sockaddr_un sa;
	socklen_t len;
	char buf[128];

	if (sk->name.data[0])
		return bind_path(u);
	len = name_addr(&sk->name, &sa);
	if (len && !bind(u->fd, (struct sockaddr *)&sa, len))
		return 0;
	/* a connected socket's name may be its listener's (accepted from a
	 * listener that is gone or outside): not worth failing for */
	if (errno == EADDRINUSE && sk->has_peer && sk->type != SOCK_DGRAM) {
		pr_warn("unix socket %u: %s is taken; the restored socket has no name", sk->ino,
			show(&sk->name, buf, sizeof(buf)));
		return 0;
	}
	pr_perror("unix socket %u: cannot bind %s", sk->ino, show(&sk->name, buf, sizeof(buf)));
	return -1;
}

static int set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

/* connect() that never waits: the listener's backlog is as it was. */
static int connect_to_as(struct usk *u, struct sockaddr_un *sa, socklen_t len, const char *what,
			 const Stasis__UnixSk *as)
{
	struct as_call call = {.fd = u->fd, .sa = sa, .len = len};
	char buf[128];
	int r;

	set_nonblock(u->fd, true);
	r = as && !call_as(as, &call) ? 0 : connect(u->fd, (struct sockaddr *)sa, len);
	set_nonblock(u->fd, false);
	if (r)
		pr_perror("unix socket %u: cannot connect to %s", u->sk->ino,
			  what ? what : show(&u->sk->name, buf, sizeof(buf)));
	return r ? -1 : 0;
}

static int connect_to(struct usk *u, struct sockaddr_un *sa, socklen_t len, const char *what)
{
	return connect_to_as(u, sa, len, what, NULL);
}

/* as: the accepted end, whose SO_PEERCRED names the connecting process */
static int connect_listener(struct usk *c, struct usk *l, const Stasis__UnixSk *as)
{
	struct sockaddr_un sa;
	socklen_t len = unix_addr_of(l, &sa);
	char buf[128], what[160];

	snprintf(what, sizeof(what), "listening socket %u (%s)", l->sk->ino,
		 show(&l->sk->name, buf, sizeof(buf)));
	if (!len) {
		pr_err("unix socket %u: %s has no name to connect to", c->sk->ino, what);
		return -1;
	}
	return connect_to_as(c, &sa, len, what, as);
}

/* Accepted connections first (the queue is empty), then the pending ones
 * in their order. */
static int connect_listeners(void)
{
	for (size_t i = 0; i < nr_usks; i++) {
		struct usk *s = &usks[i], *c, *l;

		if (!s->accepted)
			continue;
		c = peer_of(s);
		l = find(s->sk->listener);
		if (connect_listener(c, l, s->sk))
			return -1;
		s->fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
		if (s->fd < 0) {
			pr_perror("unix socket %u: cannot accept its connection again", s->sk->ino);
			return -1;
		}
		s->twin = c;
		c->twin = s;
	}
	for (size_t i = 0; i < nr_usks; i++) {
		struct usk *l = &usks[i];

		if (l->sk->state != TCP_LISTEN || l->inherited)
			continue;
		for (size_t j = 0; j < l->sk->n_icons; j++) {
			struct usk *c = find(l->sk->icons[j]);

			if (c && !c->inherited && c->sk->has_pending_on &&
			    c->sk->pending_on == l->sk->ino && connect_listener(c, l, NULL))
				return -1;
		}
	}
	return 0;
}

/* ---- connections made after the data ---- */

static int connect_dgram(struct usk *u)
{
	Stasis__UnixSk *sk = u->sk;
	struct usk *p = peer_of(u);
	struct sockaddr_un sa;
	socklen_t len;
	char buf[128];

	if (sk->type != SOCK_DGRAM || u->inherited || u->tmp >= 0)
		return 0;
	if (p && u->twin == p)
		return 0; /* its socketpair */
	if (p) {
		len = unix_addr_of(p, &sa);
		snprintf(buf, sizeof(buf), "datagram socket %u", p->sk->ino);
		if (!len) {
			pr_err("unix socket %u: its peer %u has no name to connect to", sk->ino,
			       p->sk->ino);
			return -1;
		}
		return connect_to(u, &sa, len, buf);
	}
	if (sk->external && sk->has_peer_name) {
		len = name_addr(&sk->peer_name, &sa);
		return len ? connect_to(u, &sa, len, show(&sk->peer_name, buf, sizeof(buf))) : -1;
	}
	if (unix_pair_fd(u) >= 0 && sk->has_peer && !sk->peer) {
		/* its peer was closed: connect it to a socket that then goes */
		struct sockaddr_un ta;
		socklen_t tlen = sizeof(ta);
		int t = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

		ta.sun_family = AF_UNIX;
		if (t < 0 || bind(t, (struct sockaddr *)&ta, sizeof(sa_family_t)) ||
		    getsockname(t, (struct sockaddr *)&ta, &tlen) ||
		    connect(u->fd, (struct sockaddr *)&ta, tlen)) {
			pr_perror("unix socket %u: cannot leave it connected to a closed peer",
				  sk->ino);
			if (t >= 0)
				close(t);
			return -1;
		}
		close(t);
		return 0;
	}
	if (unix_pair_fd(u) >= 0 && !sk->has_peer) {
		struct sockaddr sa_un = {.sa_family = AF_UNSPEC};

		if (connect(u->fd, &sa_un, sizeof(sa_un))) {
			pr_perror("unix socket %u: cannot disconnect it", sk->ino);
			return -1;
		}
	}
	return 0;
}

static int connect_external_pending(struct usk *u)
{
	struct sockaddr_un sa;
	socklen_t len;
	char buf[128];

	if (u->inherited || u->tmp >= 0 || u->sk->type == SOCK_DGRAM || !u->sk->external ||
	    !u->sk->has_pending_on || !u->sk->has_peer_name)
		return 0;
	len = name_addr(&u->sk->peer_name, &sa);
	return len ? connect_to(u, &sa, len, show(&u->sk->peer_name, buf, sizeof(buf))) : -1;
}

/* ---- state and options ---- */

static int set_buf(int fd, int opt, int force, uint32_t val)
{
	int v = val / 2; /* the kernel doubles what it is given */

	if (!setsockopt(fd, SOL_SOCKET, force, &v, sizeof(v)))
		return 0;
	return setsockopt(fd, SOL_SOCKET, opt, &v, sizeof(v));
}

static void set_timeo(int fd, int opt, uint64_t us)
{
	struct timeval tv = {us / 1000000, us % 1000000};

	setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv));
}

static int finish(struct usk *u)
{
	Stasis__UnixSk *sk = u->sk;
	int on = 1, how;

	if (sk->has_shutdown && (sk->shutdown & (RCV_SHUTDOWN | SEND_SHUTDOWN))) {
		how = (sk->shutdown & 3) == 3	    ? SHUT_RDWR
		      : sk->shutdown & RCV_SHUTDOWN ? SHUT_RD
						    : SHUT_WR;
		if (shutdown(u->fd, how) && errno != ENOTCONN) {
			pr_perror("unix socket %u: cannot shut it down", sk->ino);
			return -1;
		}
	}
	if ((sk->has_sndbuf && set_buf(u->fd, SO_SNDBUF, SO_SNDBUFFORCE, sk->sndbuf)) ||
	    (sk->has_rcvbuf && set_buf(u->fd, SO_RCVBUF, SO_RCVBUFFORCE, sk->rcvbuf)) ||
	    (sk->passcred && setsockopt(u->fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on))) ||
	    (sk->passsec && setsockopt(u->fd, SOL_SOCKET, SO_PASSSEC, &on, sizeof(on))) ||
	    (sk->passpidfd && setsockopt(u->fd, SOL_SOCKET, SO_PASSPIDFD, &on, sizeof(on))) ||
	    (sk->has_peek_off &&
	     setsockopt(u->fd, SOL_SOCKET, SO_PEEK_OFF, &sk->peek_off, sizeof(sk->peek_off)))) {
		pr_perror("unix socket %u: cannot set its options", sk->ino);
		return -1;
	}
	if (sk->has_rcvtimeo_us)
		set_timeo(u->fd, SO_RCVTIMEO, sk->rcvtimeo_us);
	if (sk->has_sndtimeo_us)
		set_timeo(u->fd, SO_SNDTIMEO, sk->sndtimeo_us);
	if (set_nonblock(u->fd, u->fe->flags & O_NONBLOCK)) {
		pr_perror("unix socket %u: cannot set its flags", sk->ino);
		return -1;
	}
	return 0;
}

/* ---- the build ---- */

static int max_fd(void)
{
	struct dirent *de;
	DIR *d = opendir("/proc/self/fd");
	int max = 0;

	while (d && (de = readdir(d)))
		if (atoi(de->d_name) > max)
			max = atoi(de->d_name);
	if (d)
		closedir(d);
	return max;
}

/* Where the sockets wait: above every staging number files.c can use
 * (staging starts above every restored and every open descriptor). */
static int stash_base(void)
{
	unsigned n = records_count("pstree");
	int max = max_fd();

	for (unsigned i = 0; i < n; i++) {
		Stasis__PstreeEntry *pe =
		    records_get("pstree", i, &stasis__pstree_entry__descriptor);
		char name[32];

		if (!pe)
			continue;
		snprintf(name, sizeof(name), "fdinfo-%u", pe->pid);
		protobuf_c_message_free_unpacked(&pe->base, NULL);
		for (unsigned j = 0, m = records_count(name); j < m; j++) {
			Stasis__FdinfoEntry *fi =
			    records_get(name, j, &stasis__fdinfo_entry__descriptor);

			if (fi && (int)fi->fd > max)
				max = fi->fd;
			if (fi)
				protobuf_c_message_free_unpacked(&fi->base, NULL);
		}
	}
	return max + records_count("files") + 1;
}

static int stash(void)
{
	int base = stash_base();

	for (size_t i = 0; i < nr_usks; i++) {
		struct usk *u = &usks[i];
		int fd = fcntl(u->fd, F_DUPFD_CLOEXEC, base);

		if (fd < 0) {
			pr_perror("cannot move unix socket %u above descriptor %d", u->sk->ino,
				  base);
			return -1;
		}
		close(u->fd);
		u->fd = fd;
		u->hold = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (u->hold < 0) {
			pr_perror("cannot keep a copy of unix socket %u", u->sk->ino);
			return -1;
		}
	}
	return 0;
}

static void load(void)
{
	unsigned n = records_count("files");

	for (unsigned i = 0; i < n; i++) {
		Stasis__FileEntry *fe = records_get("files", i, &stasis__file_entry__descriptor);

		if (!fe || fe->type != STASIS__FD_TYPE__UNIXSK || !fe->unixsk) {
			if (fe)
				protobuf_c_message_free_unpacked(&fe->base, NULL);
			continue;
		}
		usks = xrealloc(usks, (nr_usks + 1) * sizeof(*usks));
		usks[nr_usks++] = (struct usk){
		    .fe = fe, .sk = fe->unixsk, .fd = -1, .tmp = -1, .hold = -1, .reach = -1};
	}
}

static void cleanup(bool failed)
{
	for (size_t i = 0; i < nr_usks; i++) {
		struct usk *u = &usks[i];

		if (u->tmp >= 0)
			close(u->tmp);
		if (u->reach >= 0)
			close(u->reach);
		u->tmp = u->reach = -1;
		if (u->hold >= 0)
			close(u->hold);
		u->hold = -1;
		if (failed) {
			if (u->fd >= 0 && (!u->taken || built == 1))
				close(u->fd);
			if (u->file)
				unlink(u->file);
			u->fd = -1;
		}
		free(u->file);
		u->file = NULL;
	}
	unix_queue_cleanup();
}

static int build(void)
{
	load();
	for (size_t i = 0; i < nr_usks; i++) {
		struct usk *u = &usks[i];
		int fd = inherited_fd(u->sk->ino);

		if (fd < 0)
			continue;
		u->inherited = true;
		u->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (u->fd < 0) {
			pr_perror("--inherit-fd: descriptor %d (for unix socket %u)", fd,
				  u->sk->ino);
			return -1;
		}
		pr_info("unix socket %u: descriptor %d given by --inherit-fd", u->sk->ino, fd);
	}
	/* a nameless datagram socket that another one is connected to was
	 * made by socketpair() with it: make them together first */
	for (size_t i = 0; i < nr_usks; i++) {
		struct usk *u = &usks[i], *p = peer_of(u);

		if (u->sk->type == SOCK_DGRAM && !u->inherited && u->fd < 0 && p && !p->inherited &&
		    p != u && p->fd < 0 && !p->sk->has_name && !mutual(u, p) && new_pair(u, p))
			return -1;
	}
	for (size_t i = 0; i < nr_usks; i++)
		if (!usks[i].inherited && create(&usks[i]))
			return -1;
	/* names: the deleted ones first, whose files make way for the others */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < nr_usks; i++) {
			struct usk *u = &usks[i];

			if (u->inherited || u->accepted || !u->sk->has_name || !u->sk->name.len ||
			    (bool)u->sk->name_deleted == (bool)pass)
				continue;
			if (bind_name(u))
				return -1;
		}
	for (size_t i = 0; i < nr_usks; i++) {
		struct usk *u = &usks[i];

		struct as_call call = {.fd = u->fd,
				       .backlog = u->sk->has_backlog ? (int)u->sk->backlog : 128};

		/* SO_PEERCRED of a listener (and its clients) names who listened */
		if (!u->inherited && u->sk->state == TCP_LISTEN && call_as(u->sk, &call) &&
		    listen(u->fd, call.backlog)) {
			pr_perror("unix socket %u: cannot listen", u->sk->ino);
			return -1;
		}
	}
	if (connect_listeners() || unix_open_flights())
		return -1;
	return stash();
}

/* Once the tree exists: what needs the sockets made and the senders alive. */
static int fill_queues(void)
{
	if (unix_queue_fill())
		return -1;
	for (size_t i = 0; i < nr_usks; i++)
		if (connect_dgram(&usks[i]) || connect_external_pending(&usks[i]))
			return -1;
	for (size_t i = 0; i < nr_usks; i++)
		if (!usks[i].inherited && finish(&usks[i]))
			return -1;
	return 0;
}

int unixsk_restore_queues(void)
{
	int ret;

	if (built <= 0)
		return built;
	/* the copies stand for the sockets handed out; a socket only in
	 * flight is still here */
	for (size_t i = 0; i < nr_usks; i++) {
		struct usk *u = &usks[i];

		if (u->fd >= 0) {
			close(u->hold);
		} else {
			u->fd = u->hold;
		}
		u->hold = -1;
	}
	ret = fill_queues();
	/* temporary ends go now: their sockets see their peer closed */
	cleanup(ret != 0);
	for (size_t i = 0; i < nr_usks; i++) {
		if (usks[i].fd >= 0)
			close(usks[i].fd);
		usks[i].fd = -1;
	}
	built = ret ? -1 : 2;
	return ret;
}

static int unixsk_open(Stasis__FileEntry *fe)
{
	struct usk *u;
	int fd;

	if (!built) {
		built = build() ? -1 : 1;
		if (built < 0)
			cleanup(true);
	}
	if (built < 0)
		return -1;
	u = fe->unixsk ? find(fe->unixsk->ino) : NULL;
	if (!u || u->taken || u->fd < 0) {
		pr_err("file %u: unix socket %u is not in the checkpoint's sockets", fe->id,
		       fe->unixsk ? fe->unixsk->ino : 0);
		return -1;
	}
	u->taken = true;
	fd = u->fd;
	u->fd = -1;
	return fd;
}

const struct fd_restore_ops unixsk_restore_ops = {STASIS__FD_TYPE__UNIXSK, unixsk_open, NULL};
