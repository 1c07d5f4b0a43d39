// SPDX-License-Identifier: GPL-2.0
/*
 * The local page source of lazy restore (docs/lazy.md): answers the
 * daemon's requests from a checkpoint directory, in a process of its own
 * that speaks the page source protocol of include/stasis/lazy.h like a
 * remote source does: stasis-lazy-pages's for a directory, stasis-serialize
 * chain's for the links it holds in memory. Pages a task shares with its parent are read from
 * the parent's (pstree gives the parent), those an iterative link leaves
 * to older links from them; no page means zeros.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stasis/lazy.h"
#include "stasis/log.h"
#include "stasis/util.h"
#include "stasis-image/image.h"
#include "stasis-image/lazyresp.h"
#include "stasis-image/lazysource.h"
#include "stasis-image/memread.h"

#define SOURCE_CHUNK_PAGES 64 /* pages read and sent at a time */

struct source {
	struct chain *chain;
	struct img_writer *w;
	struct {
		uint32_t pid, ppid;
	} *tasks;
	size_t nr_tasks;
	uint8_t *buf;
};

/* pid -> ppid of every task, from DIR/pstree.img. */
static int load_parents(struct source *s, const char *dir)
{
	char path[PATH_MAX], magic[8];
	uint8_t *buf = xmalloc(STASIS_FRAME_MAX);
	int fd, ret = -1;

	snprintf(path, sizeof(path), "%s/pstree.img", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("cannot open %s", path);
		free(buf);
		return -1;
	}
	if (read_full(fd, magic, 8) != 8 || memcmp(magic, STASIS_IMG_MAGIC, 8)) {
		pr_err("%s: not a stasis image file", path);
		goto out;
	}
	for (;;) {
		Stasis__PstreeEntry *pe;
		uint32_t len;
		ssize_t n = read_full(fd, &len, 4);

		if (n == 0)
			break;
		if (n != 4 || len > STASIS_FRAME_MAX || read_full(fd, buf, len) != (ssize_t)len ||
		    !(pe = stasis__pstree_entry__unpack(NULL, len, buf))) {
			pr_err("%s: a record is truncated or malformed", path);
			goto out;
		}
		s->tasks = xrealloc(s->tasks, (s->nr_tasks + 1) * sizeof(*s->tasks));
		s->tasks[s->nr_tasks].pid = pe->pid;
		s->tasks[s->nr_tasks++].ppid = pe->ppid;
		stasis__pstree_entry__free_unpacked(pe, NULL);
	}
	ret = 0;
out:
	close(fd);
	free(buf);
	return ret;
}

static uint32_t parent_of(struct source *s, uint32_t pid)
{
	for (size_t i = 0; i < s->nr_tasks; i++)
		if (s->tasks[i].pid == pid)
			return s->tasks[i].ppid;
	return 0;
}

/*
 * What task pid held at vaddr (up to *len bytes, shortened to one kind of
 * page): its data into buf, or *zero. The owner of shared pages is found
 * up the tree.
 */
static int read_one(struct source *s, uint32_t pid, uint64_t vaddr, uint64_t *len, bool *zero)
{
	for (unsigned depth = 0; depth < 32768; depth++) {
		uint64_t end;
		enum chain_page k = chain_page(s->chain, pid, vaddr, &end);

		if (end - vaddr < *len)
			*len = end - vaddr;
		switch (k) {
		case CHAIN_PAGE_NONE:
			*zero = true;
			return 0;
		case CHAIN_PAGE_DATA:
			*zero = false;
			return chain_read_memory(s->chain, pid, vaddr, s->buf, *len);
		case CHAIN_PAGE_LAZY:
			pr_err("page %#llx of task %u is at the source of a lazy dump, not in the "
			       "directory: use --page-server",
			       (unsigned long long)vaddr, pid);
			return -1;
		case CHAIN_PAGE_PARENT:
			pid = parent_of(s, pid);
			if (!pid) {
				pr_err("pages at %#llx are shared with a parent the checkpoint lacks",
				       (unsigned long long)vaddr);
				return -1;
			}
			break;
		}
	}
	pr_err("the checkpoint's process tree loops");
	return -1;
}

static int answer(struct source *s, const struct lazy_req *req)
{
	uint64_t vaddr = req->vaddr, end = vaddr + (uint64_t)req->nr_pages * PAGE_SIZE;

	while (vaddr < end) {
		uint64_t len = end - vaddr;
		bool zero;

		if (len > SOURCE_CHUNK_PAGES * PAGE_SIZE)
			len = SOURCE_CHUNK_PAGES * PAGE_SIZE;
		if (read_one(s, req->pid, vaddr, &len, &zero))
			return -1;
		if (zero ? lazy_resp_head(s->w, req->pid, vaddr, len / PAGE_SIZE, 1)
			 : lazy_resp_pages(s->w, "pages-lazy", req->pid, vaddr, s->buf,
					   len / PAGE_SIZE))
			return -1;
		vaddr += len;
	}
	return 0;
}

/* The source process: requests until LAZY_REQ_DONE (then the trailer) or
 * the end of the request pipe (the restore failed). */
int lazy_source_serve(const char *dir, int req_fd, int resp_fd)
{
	struct source s = { 0 };
	struct lazy_req req;
	int r;

	s.chain = chain_open(dir);
	if (!s.chain || load_parents(&s, dir))
		return 1;
	s.buf = xmalloc(SOURCE_CHUNK_PAGES * PAGE_SIZE);
	s.w = imgw_open(resp_fd);
	if (imgw_flush(s.w))
		return 1;
	while ((r = lazy_req_read(req_fd, &req)) > 0) {
		if (req.kind == LAZY_REQ_DONE)
			return imgw_finish(s.w) ? 1 : 0;
		if (answer(&s, &req))
			return 1;
	}
	return r < 0 ? 1 : 0;
}

pid_t lazy_source_start(const char *dir, int *req_fd, int *resp_fd)
{
	int req[2], resp[2];
	pid_t pid;

	if (pipe2(req, O_CLOEXEC) || pipe2(resp, O_CLOEXEC)) {
		pr_perror("cannot make the page source's pipes");
		return -1;
	}
	pipe_grow(resp[1]);
	pid = fork();
	if (pid < 0) {
		pr_perror("cannot start the page source");
		return -1;
	}
	if (pid == 0) {
		close(req[1]);
		close(resp[0]);
		signal(SIGPIPE, SIG_IGN);
		_exit(lazy_source_serve(dir, req[0], resp[1]));
	}
	close(req[0]);
	close(resp[1]);
	*req_fd = req[1];
	*resp_fd = resp[0];
	return pid;
}
