// SPDX-License-Identifier: GPL-2.0
/*
 * The binary messages of lazy restore (include/stasis/lazy.h): page
 * requests to a page source, and the restored tasks' userfaultfds handed
 * from the restorer to the lazy-pages daemon.
 */
#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "stasis/lazy.h"
#include "stasis/log.h"
#include "stasis/util.h"

void lazy_req_encode(struct lazy_req *req, int kind, pid_t pid, uint64_t vaddr, uint32_t nr_pages)
{
	*req = (struct lazy_req){
		.magic = htole32(LAZY_REQ_MAGIC),
		.kind = htole16(kind),
		.pid = (int32_t)htole32((uint32_t)pid),
		.nr_pages = htole32(nr_pages),
		.vaddr = htole64(vaddr),
	};
}

int lazy_req_write(int fd, int kind, pid_t pid, uint64_t vaddr, uint32_t nr_pages)
{
	struct lazy_req req;

	lazy_req_encode(&req, kind, pid, vaddr, nr_pages);
	if (write_full(fd, &req, sizeof(req))) {
		pr_perror("cannot send a page request to the page source");
		return -1;
	}
	return 0;
}

int lazy_req_read(int fd, struct lazy_req *req)
{
	ssize_t n = read_full(fd, req, sizeof(*req));

	if (n == 0)
		return 0;
	if (n < 0) {
		pr_perror("cannot read a page request");
		return -1;
	}
	if (n != sizeof(*req)) {
		pr_err("page request truncated (%zd of %zu bytes)", n, sizeof(*req));
		return -1;
	}
	req->magic = le32toh(req->magic);
	req->kind = le16toh(req->kind);
	req->flags = le16toh(req->flags);
	req->pid = (int32_t)le32toh((uint32_t)req->pid);
	req->nr_pages = le32toh(req->nr_pages);
	req->vaddr = le64toh(req->vaddr);
	if (req->magic != LAZY_REQ_MAGIC || req->flags ||
	    (req->kind != LAZY_REQ_PAGES && req->kind != LAZY_REQ_DONE)) {
		pr_err("invalid page request (magic %#x, kind %u)", req->magic, req->kind);
		return -1;
	}
	if (req->kind == LAZY_REQ_PAGES &&
	    (req->pid <= 0 || !req->nr_pages || req->nr_pages > LAZY_REQ_MAX_PAGES ||
	     req->vaddr % PAGE_SIZE || req->vaddr + (uint64_t)req->nr_pages * PAGE_SIZE < req->vaddr)) {
		pr_err("invalid page request: task %d, %u pages at %#llx", req->pid, req->nr_pages,
		       (unsigned long long)req->vaddr);
		return -1;
	}
	return 1;
}

int lazy_connect(const char *dir)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int sk;

	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir, LAZY_SOCKET_NAME) >=
	    sizeof(sa.sun_path)) {
		pr_err("%s/%s: path too long for a unix socket", dir, LAZY_SOCKET_NAME);
		return -1;
	}
	sk = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sk < 0) {
		pr_perror("cannot make a unix socket");
		return -1;
	}
	if (connect(sk, (struct sockaddr *)&sa, sizeof(sa))) {
		pr_perror("cannot reach the lazy-pages daemon at %s (is `stasis lazy-pages` running?)",
			  sa.sun_path);
		close(sk);
		return -1;
	}
	return sk;
}

int lazy_send_task(int sk, pid_t pid, int uffd, int pidfd, const struct lazy_range *ranges,
		   uint32_t nr)
{
	struct lazy_task head = { LAZY_TASK_MAGIC, pid, nr, 0 };
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { &head, sizeof(head) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	int fds[2] = { uffd, pidfd }, nfds = uffd < 0 ? 0 : pidfd < 0 ? 1 : 2;
	ssize_t n;

	if (nfds) {
		struct cmsghdr *c;

		if (nfds == 2)
			head.flags |= LAZY_TASK_PIDFD;
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	do
		n = sendmsg(sk, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != sizeof(head) ||
	    (nr && write_full(sk, ranges, (size_t)nr * sizeof(*ranges)))) {
		pr_perror("cannot hand task %d to the lazy-pages daemon", pid);
		return -1;
	}
	return 0;
}

int lazy_recv_task(int sk, pid_t *pid, int *uffd, int *pidfd, struct lazy_range **ranges,
		   uint32_t *nr)
{
	struct lazy_task head;
	union {
		char buf[CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { &head, sizeof(head) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	ssize_t n;
	int fd = -1, pfd = -1;

	do
		n = recvmsg(sk, &mh, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	while (n < 0 && errno == EINTR);
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int got;

			memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (fd < 0)
				fd = got;
			else if (pfd < 0)
				pfd = got;
			else
				close(got);
		}
	}
	if (n == 0 && fd < 0)
		return 0;
	if (n < 0) {
		pr_perror("cannot read from the restorer");
		goto err;
	}
	if (n != sizeof(head) || head.magic != LAZY_TASK_MAGIC || head.pid < 0 ||
	    head.nr_ranges > LAZY_MAX_RANGES || (head.pid && fd < 0) || (!head.pid && fd >= 0) ||
	    (head.flags & ~LAZY_TASK_PIDFD) || (!!(head.flags & LAZY_TASK_PIDFD) != (pfd >= 0))) {
		pr_err("invalid task message from the restorer");
		goto err;
	}
	*ranges = xmalloc(((size_t)head.nr_ranges + 1) * sizeof(**ranges));
	if (head.nr_ranges &&
	    read_full(sk, *ranges, (size_t)head.nr_ranges * sizeof(**ranges)) !=
		    (ssize_t)(head.nr_ranges * sizeof(**ranges))) {
		pr_err("task %d: its lazy ranges are truncated", head.pid);
		free(*ranges);
		goto err;
	}
	*pid = head.pid;
	*uffd = fd;
	*pidfd = pfd;
	*nr = head.nr_ranges;
	return 1;
err:
	if (fd >= 0)
		close(fd);
	if (pfd >= 0)
		close(pfd);
	return -1;
}
