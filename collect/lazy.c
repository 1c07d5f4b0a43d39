// SPDX-License-Identifier: GPL-2.0
/*
 * The lazy page server of a lazy dump (--lazy-pages): once the images are
 * stored, the tree stays frozen and the private anonymous pages left out
 * of them are read from it (process_vm_readv) and written as the response
 * stream of include/stasis/lazy.h: requested pages first, every other one
 * pushed in the background, each exactly once. The tree may go only when
 * the destination says it has every page (LAZY_REQ_DONE); a request
 * channel closed before that means the destination gave up.
 *
 * The push starts with the first request (the destination asks only once
 * its tasks are registered, so no page arrives before its task), and
 * requested pages that no run holds are answered as zeros. The trailer
 * follows LAZY_REQ_DONE: until then a request for a hole in the memory
 * may still come.
 *
 * Page frames are those of the task's pages-N image at image offset =
 * address: a page's (image, offset) never repeats, which the per-page
 * tweak and tag nonce of a sealed stream rely on (docs/seal.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "collect.h"
#include "stasis/lazy.h"
#include "stasis/log.h"
#include "stasis/util.h"
#include "stasis-image/imgfile.h"
#include "stasis-image/lazyresp.h"

/* a background push goes out in pieces of one frame, so that a request
 * never waits behind more than that */
#define PUSH_PIECE STASIS_PAGE_FRAME_SPAN
/* requests read while an answer could not be written yet */
#define QUEUE_MAX 65536

static struct {
	struct ctask *cts;
	int nr;
	struct img_writer *w;
	int out;
	char *buf;
	uint64_t total, sent, served, pushed, zero;
	/* the background push: next task, run and page to look at */
	int cur_task;
	size_t cur_run;
	unsigned long cur_page;
	uint64_t start_ns, first_req_ns;
	/* requests taken while the page stream was full */
	struct lazy_req *queue;
	size_t q_head, q_nr;
	bool req_ended; /* the request channel ended (or broke) meanwhile */
} ls;

static bool interrupted(void)
{
	sigset_t pending;

	sigpending(&pending);
	return sigismember(&pending, SIGINT) || sigismember(&pending, SIGTERM) ||
	       sigismember(&pending, SIGHUP);
}

static void report_closed(void)
{
	pr_err("the destination closed the lazy page channel before it had every page "
	       "(%llu of %llu sent)",
	       (unsigned long long)ls.sent, (unsigned long long)ls.total);
}

static void queue_put(const struct lazy_req *q)
{
	if (!ls.queue)
		ls.queue = xmalloc(QUEUE_MAX * sizeof(*ls.queue));
	ls.queue[(ls.q_head + ls.q_nr++) % QUEUE_MAX] = *q;
}

/*
 * Each frame goes out as it is made: the destination waits for it. While
 * the page stream is full, requests are still read (and queued): a
 * destination that writes requests before it reads answers must not stall
 * both channels.
 */
static int sink_frame(void *arg, const struct img_frame *f)
{
	struct stasis_frame_hdr hdr = f->hdr;
	struct iovec iov[2] = { { &hdr, sizeof(hdr) }, { f->data, f->hdr.len } }, *v = iov;
	int cnt = f->hdr.len ? 2 : 1;

	(void)arg;
	while (cnt) {
		struct pollfd p[2] = { { .fd = ls.out, .events = POLLOUT },
				       { .fd = opts.lazy_req_fd, .events = POLLIN } };
		ssize_t n = writev(ls.out, v, cnt);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN) {
			pr_perror("cannot write the lazy page stream");
			return -1;
		}
		for (; n > 0 && cnt; v++, cnt--) {
			if ((size_t)n < v->iov_len) {
				v->iov_base = (char *)v->iov_base + n;
				v->iov_len -= n;
				break;
			}
			n -= v->iov_len;
		}
		if (!cnt)
			break;
		if (poll(p, ls.req_ended || ls.q_nr == QUEUE_MAX ? 1 : 2, 200) < 0 && errno != EINTR) {
			pr_perror("cannot wait for the lazy page stream");
			return -1;
		}
		/* no destination yet, or a stalled one: the operator may give up */
		if (interrupted()) {
			pr_err("interrupted while serving lazy pages");
			return -1;
		}
		if (p[1].revents && !ls.req_ended && ls.q_nr < QUEUE_MAX) {
			struct lazy_req q;
			int r = lazy_req_read(opts.lazy_req_fd, &q);

			if (r <= 0) {
				/* the destination is gone: nothing waits for this */
				ls.req_ended = true;
				if (!r)
					report_closed();
				return -1;
			}
			queue_put(&q);
		}
	}
	return 0;
}

static bool page_sent(const struct page_run *r, unsigned long i)
{
	return r->sent[i / 8] & (1u << (i % 8));
}

static int read_pages(pid_t pid, unsigned long addr, char *buf, size_t len)
{
	while (len) {
		struct iovec local = { buf, len }, remote = { (void *)addr, len };
		ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);

		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			pr_err("cannot read the memory of task %d at %#lx: %s", pid, addr,
			       n < 0 ? strerror(errno) : "nothing read");
			return -1;
		}
		buf += n;
		addr += n;
		len -= n;
	}
	return 0;
}

/*
 * Sends pages [first, first + nr) of run r of task ct, none of them sent
 * yet, as one record and its frames; frames end at multiples of
 * STASIS_PAGE_FRAME_SPAN of the address.
 */
static int send_pages(struct ctask *ct, struct page_run *r, unsigned long first, unsigned long nr,
		      bool requested)
{
	unsigned long addr = r->vaddr + first * PAGE_SIZE, end = addr + nr * PAGE_SIZE;
	char image[32];

	snprintf(image, sizeof(image), "pages-%u", ct->pages_id);
	if (lazy_resp_head(ls.w, ct->pid, addr, nr, 0))
		return -1;
	while (addr < end) {
		unsigned long span_end = (addr / STASIS_PAGE_FRAME_SPAN + 1) * STASIS_PAGE_FRAME_SPAN;
		size_t len = (span_end < end ? span_end : end) - addr;
		struct img_frame f = { .image = image, .data = ls.buf };

		if (read_pages(ct->pid, addr, ls.buf, len))
			return -1;
		f.hdr.kind = FRAME_PAGES;
		f.hdr.offset = addr;
		f.hdr.len = len;
		if (imgw_frame(ls.w, &f))
			return -1;
		addr += len;
	}
	for (unsigned long i = first; i < first + nr; i++)
		r->sent[i / 8] |= 1u << (i % 8);
	ls.sent += nr;
	if (requested)
		ls.served += nr;
	else
		ls.pushed += nr;
	return 0;
}

/* Sends what is not sent yet of pages [first, first + nr) of r. */
static int send_unsent(struct ctask *ct, struct page_run *r, unsigned long first,
		       unsigned long nr, bool requested)
{
	unsigned long i = first, end = first + nr;

	while (i < end) {
		unsigned long j;

		while (i < end && page_sent(r, i))
			i++;
		for (j = i; j < end && !page_sent(r, j); j++)
			;
		if (j > i && send_pages(ct, r, i, j - i, requested))
			return -1;
		i = j;
	}
	return 0;
}

static struct ctask *find_task(pid_t pid)
{
	for (int i = 0; i < ls.nr; i++)
		if (ls.cts[i].threads && ls.cts[i].pid == pid)
			return &ls.cts[i];
	return NULL;
}

/* The lazy pages a request names; the rest of it is not ours to send
 * (not dumped, or in the images) and is left out. */
static int serve(const struct lazy_req *q)
{
	struct ctask *ct = find_task(q->pid);
	uint64_t start = q->vaddr, end = q->vaddr + (uint64_t)q->nr_pages * PAGE_SIZE, pos = start;

	if (!ls.first_req_ns)
		ls.first_req_ns = now_ns();
	if (!ct) {
		pr_warn("lazy page request for task %d, which is not in the tree", q->pid);
		return 0;
	}
	pr_debug("request: task %d, %u pages at %#llx", q->pid, q->nr_pages,
		 (unsigned long long)q->vaddr);
	/* runs are in address order: what lies between them was not dumped */
	for (size_t i = 0; i <= ct->nr_runs && pos < end; i++) {
		struct page_run *r = i < ct->nr_runs ? &ct->runs[i] : NULL;
		uint64_t rstart = r ? r->vaddr : end, rend = r ? r->vaddr + r->nr_pages * PAGE_SIZE : end;
		uint64_t zend = rstart < end ? rstart : end;

		if (zend > pos) {
			if (lazy_resp_head(ls.w, ct->pid, pos, (zend - pos) / PAGE_SIZE, 1))
				return -1;
			ls.zero += (zend - pos) / PAGE_SIZE;
		}
		if (rend > pos)
			pos = rend;
	}
	for (size_t i = 0; i < ct->nr_runs; i++) {
		struct page_run *r = &ct->runs[i];
		uint64_t rend = r->vaddr + r->nr_pages * PAGE_SIZE, from, to;

		if (!r->lazy || rend <= start || r->vaddr >= end)
			continue;
		from = start > r->vaddr ? start : r->vaddr;
		to = end < rend ? end : rend;
		if (send_unsent(ct, r, (from - r->vaddr) / PAGE_SIZE, (to - from) / PAGE_SIZE, true))
			return -1;
		/* the background push goes on from here: what a task touches
		 * next is most often what follows */
		ls.cur_task = ct - ls.cts;
		ls.cur_run = i;
		ls.cur_page = (to - r->vaddr) / PAGE_SIZE;
	}
	return 0;
}

/* One piece of the background push, from the cursor on (wrapping). */
static int push_piece(void)
{
	for (uint64_t steps = 0; ls.sent < ls.total; steps++) {
		struct ctask *ct = &ls.cts[ls.cur_task];
		struct page_run *r;
		unsigned long n;

		if (!ct->threads || ls.cur_run >= ct->nr_runs) {
			ls.cur_task = (ls.cur_task + 1) % ls.nr;
			ls.cur_run = 0;
			ls.cur_page = 0;
			continue;
		}
		r = &ct->runs[ls.cur_run];
		if (!r->lazy || ls.cur_page >= r->nr_pages) {
			ls.cur_run++;
			ls.cur_page = 0;
			continue;
		}
		if (page_sent(r, ls.cur_page)) {
			ls.cur_page++;
			continue;
		}
		n = 1;
		while (ls.cur_page + n < r->nr_pages && !page_sent(r, ls.cur_page + n) &&
		       n * PAGE_SIZE < PUSH_PIECE &&
		       (r->vaddr + (ls.cur_page + n) * PAGE_SIZE) % STASIS_PAGE_FRAME_SPAN)
			n++;
		if (send_pages(ct, r, ls.cur_page, n, false))
			return -1;
		ls.cur_page += n;
		return 0;
	}
	return 0;
}


static void write_stats(void)
{
	Stasis__DumpStats s = STASIS__DUMP_STATS__INIT;

	pr_info("lazy pages: %llu in all, %llu served on request, %llu pushed; %llu zero pages "
		"answered",
		(unsigned long long)ls.total, (unsigned long long)ls.served,
		(unsigned long long)ls.pushed, (unsigned long long)ls.zero);
	if (!opts.lazy_stats_file)
		return;
	s.has_pages_lazy = s.has_pages_lazy_served = s.has_pages_lazy_pushed = true;
	s.pages_lazy = ls.total;
	s.pages_lazy_served = ls.served;
	s.pages_lazy_pushed = ls.pushed;
	s.has_lazy_time = true;
	s.lazy_time = (now_ns() - ls.start_ns) / 1000;
	s.has_lazy_first_request = ls.first_req_ns != 0;
	s.lazy_first_request = ls.first_req_ns ? (ls.first_req_ns - ls.start_ns) / 1000 : 0;
	if (imgfile_write_record(opts.lazy_stats_file, &s.base))
		pr_warn("the lazy page statistics were not written");
}

int lazy_serve(struct ctask *cts, int nr)
{
	bool finished = false;
	int ret = -1;

	ls.cts = cts;
	ls.nr = nr;
	ls.out = opts.lazy_resp_fd;
	ls.start_ns = now_ns();
	for (int i = 0; i < nr; i++)
		for (size_t j = 0; cts[i].threads && j < cts[i].nr_runs; j++) {
			struct page_run *r = &cts[i].runs[j];

			if (!r->lazy)
				continue;
			r->sent = xzalloc(r->nr_pages / 8 + 1);
			ls.total += r->nr_pages;
		}
	ls.buf = xmalloc(STASIS_PAGE_FRAME_SPAN);
	fcntl(ls.out, F_SETFL, fcntl(ls.out, F_GETFL) | O_NONBLOCK);
	ls.w = imgw_open_sink(sink_frame, NULL);
	pr_info("serving %llu lazy pages", (unsigned long long)ls.total);

	for (;;) {
		struct pollfd p = { .fd = opts.lazy_req_fd, .events = POLLIN };
		/* all pushed: only the destination's word is awaited */
		int n = ls.q_nr ? 1 : poll(&p, 1, finished || !ls.first_req_ns ? 200 : 0);
		struct lazy_req q;

		if (interrupted()) {
			pr_err("interrupted while serving lazy pages");
			break;
		}
		if (n < 0 && errno != EINTR) {
			pr_perror("cannot wait for lazy page requests");
			break;
		}
		if (n > 0) {
			int r = 1;

			if (ls.q_nr) {
				q = ls.queue[ls.q_head];
				ls.q_head = (ls.q_head + 1) % QUEUE_MAX;
				ls.q_nr--;
			} else {
				r = lazy_req_read(opts.lazy_req_fd, &q);
			}
			if (r < 0)
				break;
			if (r == 0) {
				report_closed();
				break;
			}
			if (q.kind == LAZY_REQ_DONE) {
				/* the destination may need fewer pages than were
				 * dumped: its tasks may have unmapped some */
				pr_info("the destination has every lazy page (%llu of %llu sent)",
					(unsigned long long)ls.sent, (unsigned long long)ls.total);
				/* the end of the page stream: nothing more comes */
				if (imgw_finish(ls.w))
					pr_warn("cannot end the lazy page stream");
				ret = 0;
				break;
			}
			if (serve(&q))
				break;
			continue;
		}
		/* nothing pushed before the destination's first request */
		if (finished || !ls.first_req_ns)
			continue;
		if (ls.sent < ls.total && push_piece())
			break;
		if (ls.sent == ls.total) {
			finished = true;
			pr_info("every lazy page was sent; waiting for the destination");
		}
	}
	write_stats();
	if (ls.out >= 0)
		close(ls.out);
	ls.out = -1;
	imgw_free(ls.w);
	ls.w = NULL;
	free(ls.buf);
	free(ls.queue);
	return ret;
}
