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
	uint8_t *buf;
};

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
			pid = chain_parent_of(s->chain, pid);
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
	if (!s.chain || chain_load_tree(s.chain))
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
