// SPDX-License-Identifier: GPL-2.0
/*
 * stasis-lazy-pages: the lazy restore daemon (docs/lazy.md). It receives
 * the userfaultfds of the tasks stasis-inject --lazy-pages restores, with
 * the ranges of their memory left empty, and fills them: a faulted page
 * (and a few after it) first, the rest in the background, from a page
 * source (include/stasis/lazy.h). It follows what the tasks do to their
 * memory meanwhile (fork, mremap, munmap, MADV_DONTNEED), so that no page
 * goes where a task dropped its memory and a child gets the pages it had
 * at its fork. Pending ranges are kept by the address they have now in the
 * task and the address they had at the dump (what the source knows).
 * Any failure kills the restored tree: it cannot run without its memory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stasis-image/lazysource.h"
#include "lazy-remote.h"
#include "stasis/lazy.h"
#include "stasis/log.h"
#include "stasis/proc.h"
#include "stasis/opts.h"
#include "stasis/uffd.h"
#include "stasis/util.h"
#include "stasis-image/image.h"
#include "stasis-image/imgfile.h"

#define FAULT_AHEAD_PAGES 16	/* asked for with a faulted page */
#define PREFETCH_PAGES 256	/* per background request */
#define PREFETCH_WINDOW 4	/* background requests out at once */
#define MAX_TASKS 65536
/* A page source that pushes nothing for this long while pages are still
 * missing gets background requests too (it may not push, or may have
 * pushed pages before their task was handed over). */
#define IDLE_PREFETCH_NS (100 * 1000000ull)

/* Pages still to fill: [start, end) in the task now, src their address at
 * the dump. */
struct lrange {
	uint64_t start, end, src;
};

struct ltask {
	int uffd;
	pid_t pid;  /* the dumped task whose pages these are (for the source) */
	pid_t real; /* the process, 0 for one forked since (unknown) */
	int pidfd;  /* of real (from the restorer), or -1 */
	struct lrange *r;
	size_t nr, cap;
	uint64_t wm; /* background requests have covered src addresses below */
	bool gone;
};

/* Requested src intervals: background ones out, faulted ones (stats). */
struct ival {
	pid_t pid;
	uint64_t a, b;
};

struct ivals {
	struct ival *v;
	size_t nr, cap;
};

static struct ltask **tasks;
static size_t nr_tasks;
static struct ivals prefetching, faulted;
static int req_fd = -1, resp_fd = -1;
static struct img_reader *resp;
static char *outbuf;
static size_t out_len, out_cap;
static bool source_ended, tree_done;
/* the page source sends only what it is asked for (ours, of a directory;
 * --request-all): every page is asked for in the background at once,
 * instead of when a pushing source has gone quiet */
static bool request_all;
static pid_t source_pid;
static long prefetch_delay_ms;
static uint64_t next_prefetch_ns, last_arrival_ns;
static bool display_stats;
static int restorer = -1; /* the connection of stasis-inject */
static struct {
	uint64_t lazy, faulted, pushed, zero;
	uint64_t t0, first_run, all_in;
} st;

/* A page frame's data for the answer being read. */
static struct {
	bool open;
	pid_t pid;
	uint64_t vaddr, left;
} cur;

/* ---------------------------------------------------------------- ranges */

static void range_add(struct ltask *t, struct lrange x)
{
	size_t i = t->nr;

	if (x.start >= x.end)
		return;
	if (t->nr == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 16;
		t->r = xrealloc(t->r, t->cap * sizeof(*t->r));
	}
	while (i > 0 && t->r[i - 1].start > x.start) {
		t->r[i] = t->r[i - 1];
		i--;
	}
	t->r[i] = x;
	t->nr++;
}

/* Drops [a, b) from t's pending ranges; the pages dropped. */
static uint64_t range_drop(struct ltask *t, uint64_t a, uint64_t b)
{
	uint64_t dropped = 0;

	for (size_t i = 0; i < t->nr; i++) {
		struct lrange r = t->r[i];

		if (r.end <= a || r.start >= b)
			continue;
		dropped += ((r.end < b ? r.end : b) - (r.start > a ? r.start : a)) / PAGE_SIZE;
		if (r.start < a && r.end > b) {
			/* split in two */
			t->r[i].end = a;
			range_add(t, (struct lrange){ b, r.end, r.src + (b - r.start) });
			return dropped;
		}
		if (r.start < a) {
			t->r[i].end = a;
		} else if (r.end > b) {
			t->r[i].src += b - r.start;
			t->r[i].start = b;
		} else {
			memmove(&t->r[i], &t->r[i + 1], (t->nr - i - 1) * sizeof(*t->r));
			t->nr--;
			i--;
		}
	}
	return dropped;
}

/* mremap: what was pending in [from, from + len) is now at to. */
static void range_move(struct ltask *t, uint64_t from, uint64_t to, uint64_t len)
{
	struct lrange *moved = NULL;
	size_t nr = 0;

	for (size_t i = 0; i < t->nr; i++) {
		struct lrange r = t->r[i];
		uint64_t a = r.start > from ? r.start : from;
		uint64_t b = r.end < from + len ? r.end : from + len;

		if (a >= b)
			continue;
		moved = xrealloc(moved, (nr + 1) * sizeof(*moved));
		moved[nr++] = (struct lrange){ a - from + to, b - from + to, r.src + (a - r.start) };
	}
	range_drop(t, from, from + len);
	/* what was at the target was unmapped first (an UNMAP event, or
	 * nothing registered there) */
	range_drop(t, to, to + len);
	for (size_t i = 0; i < nr; i++)
		range_add(t, moved[i]);
	free(moved);
}

static struct lrange *range_find(struct ltask *t, uint64_t addr)
{
	size_t lo = 0, hi = t->nr;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (t->r[mid].end <= addr)
			lo = mid + 1;
		else if (t->r[mid].start > addr)
			hi = mid;
		else
			return &t->r[mid];
	}
	return NULL;
}

static void ival_add(struct ivals *s, pid_t pid, uint64_t a, uint64_t b)
{
	if (s->nr == s->cap) {
		if (s->cap >= 4096) {
			/* only statistics are lost: forget the oldest */
			memmove(s->v, s->v + 1, (s->nr - 1) * sizeof(*s->v));
			s->nr--;
		} else {
			s->cap = s->cap ? 2 * s->cap : 16;
			s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
		}
	}
	s->v[s->nr++] = (struct ival){ pid, a, b };
}

/* Takes [a, b) of pid out of s; the bytes that were in it. */
static uint64_t ival_sub(struct ivals *s, pid_t pid, uint64_t a, uint64_t b)
{
	uint64_t hit = 0;

	for (size_t i = 0; i < s->nr; i++) {
		struct ival *v = &s->v[i];
		uint64_t x = v->a > a ? v->a : a, y = v->b < b ? v->b : b;

		if (v->pid != pid || x >= y)
			continue;
		hit += y - x;
		if (v->a < x && v->b > y) {
			uint64_t end = v->b;

			v->b = x;
			ival_add(s, pid, y, end);
		} else if (v->a < x) {
			v->b = x;
		} else if (v->b > y) {
			v->a = y;
		} else {
			s->v[i--] = s->v[--s->nr];
		}
	}
	return hit;
}

/* ---------------------------------------------------------------- tree */

static struct ltask *task_new(int uffd, pid_t pid, pid_t real, int pidfd)
{
	struct ltask *t = xzalloc(sizeof(*t));

	if (nr_tasks >= MAX_TASKS) {
		pr_err("more than %d tasks to fill", MAX_TASKS);
		free(t);
		return NULL;
	}
	t->uffd = uffd;
	t->pid = pid;
	t->real = real;
	t->pidfd = pidfd;
	tasks = xrealloc(tasks, (nr_tasks + 1) * sizeof(*tasks));
	tasks[nr_tasks++] = t;
	return t;
}

static void task_gone(struct ltask *t)
{
	t->gone = true;
	t->nr = 0;
	if (t->uffd >= 0)
		close(t->uffd);
	t->uffd = -1;
}

/* The restored tasks and everything they forked since, killed: each by
 * the pidfd the restorer gave with it, so that a PID in another namespace's
 * numbering, or one freed and taken again, never names the victim. */
static void kill_tree(void)
{
	int *pidfds = NULL;
	size_t nr = 0;

	for (size_t i = 0; i < nr_tasks; i++)
		if (tasks[i]->pidfd >= 0) {
			pidfds = xrealloc(pidfds, (nr + 1) * sizeof(*pidfds));
			pidfds[nr++] = tasks[i]->pidfd;
		}
	proc_kill_pidfds_with_descendants(pidfds, nr);
	free(pidfds);
}

/* ---------------------------------------------------------------- requests */

static int flush_requests(void)
{
	while (out_len) {
		ssize_t n = write(req_fd, outbuf, out_len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0) {
			pr_perror("cannot send requests to the page source");
			return -1;
		}
		memmove(outbuf, outbuf + n, out_len - n);
		out_len -= n;
	}
	return 0;
}

static int request(int kind, pid_t pid, uint64_t vaddr, uint32_t nr_pages)
{
	if (out_len + sizeof(struct lazy_req) > out_cap) {
		out_cap = out_cap ? 2 * out_cap : 4096;
		outbuf = xrealloc(outbuf, out_cap);
	}
	lazy_req_encode((struct lazy_req *)(outbuf + out_len), kind, pid, vaddr, nr_pages);
	out_len += sizeof(struct lazy_req);
	return flush_requests();
}

/* ---------------------------------------------------------------- filling */

static int drain_events(void);

/*
 * Fills [dst, dst + len) of t with data (zeros when NULL) and takes it out
 * of its pending ranges: 0 done, 1 the task's memory is changing (an event
 * to read first, then again), -1 error. Pages there already, or no longer
 * mapped, are skipped: the task has what the kernel gave it.
 */
static int fill(struct ltask *t, uint64_t dst, const char *data, uint64_t len, uint64_t *filled)
{
	/* one call fills one mapping: where a range spans several (or the
	 * task split its mapping), smaller steps */
	uint64_t step = len;

	while (len) {
		uint64_t now = step < len ? step : len;
		long long n;
		int rc, err;

		if (data) {
			struct uffdio_copy c = { dst, (unsigned long)data, now, 0, 0 };

			rc = ioctl(t->uffd, UFFDIO_COPY, &c);
			n = rc ? c.copy : (long long)now;
		} else {
			struct uffdio_zeropage z = { { dst, now }, 0, 0 };

			rc = ioctl(t->uffd, UFFDIO_ZEROPAGE, &z);
			n = rc ? z.zeropage : (long long)now;
		}
		err = n < 0 ? (int)-n : errno;
		if (n > 0) {
			range_drop(t, dst, dst + n);
			*filled += n / PAGE_SIZE;
			dst += n;
			if (data)
				data += n;
			len -= n;
			continue;
		}
		pr_debug("task %d: filling %#llx (%llu bytes): %s", t->pid, (unsigned long long)dst,
			 (unsigned long long)len, strerror(err));
		if (err == ENOENT && now > PAGE_SIZE) {
			step = (now / 2 + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
			continue;
		}
		switch (err) {
		case EAGAIN:
			return 1;
		case EEXIST:
		case ENOENT:
			range_drop(t, dst, dst + PAGE_SIZE);
			dst += PAGE_SIZE;
			if (data)
				data += PAGE_SIZE;
			len -= PAGE_SIZE;
			break;
		case ESRCH:
			task_gone(t); /* it exited */
			return 0;
		default:
			pr_err("task %d: cannot fill its memory at %#llx: %s", t->real ? t->real : t->pid,
			       (unsigned long long)dst, strerror(err));
			return -1;
		}
	}
	return 0;
}

/* Pages of the dumped task pid at vaddr arrived: into every task waiting
 * for them (a parent and its children forked since). */
static int arrive(pid_t pid, uint64_t vaddr, const char *data, uint64_t len)
{
	uint64_t filled = 0, asked;
	bool again;

	last_arrival_ns = now_ns();
	do {
		again = false;
		for (size_t i = 0; i < nr_tasks && !again; i++) {
			struct ltask *t = tasks[i];

			for (size_t j = 0; !t->gone && t->pid == pid && j < t->nr; j++) {
				struct lrange r = t->r[j];
				uint64_t a = r.src > vaddr ? r.src : vaddr;
				uint64_t b = r.src + (r.end - r.start);
				int ret;

				if (b > vaddr + len)
					b = vaddr + len;
				if (a >= b)
					continue;
				ret = fill(t, r.start + (a - r.src), data ? data + (a - vaddr) : NULL,
					   b - a, &filled);
				if (ret < 0)
					return -1;
				if (ret > 0 && drain_events())
					return -1;
				/* the ranges changed under us: look again */
				again = true;
				break;
			}
		}
	} while (again);
	ival_sub(&prefetching, pid, vaddr, vaddr + len);
	asked = ival_sub(&faulted, pid, vaddr, vaddr + len) / PAGE_SIZE;
	if (asked > filled)
		asked = filled;
	st.faulted += asked;
	st.pushed += filled - asked;
	return 0;
}

/* Zero faults whose mm was changing: tried again once its events are read
 * (reading them here would take them out of order). */
static struct deferred {
	struct ltask *t;
	uint64_t page;
} *deferred;
static size_t nr_deferred;

/* 0 done, 1 to try again after the events, -1 error. */
static int zero_fault(struct ltask *t, uint64_t page)
{
	struct uffdio_zeropage z = { { page, PAGE_SIZE }, 0, 0 };
	struct uffdio_range wake = { page, PAGE_SIZE };

	if (!ioctl(t->uffd, UFFDIO_ZEROPAGE, &z)) {
		st.zero++;
		return 0;
	}
	switch (errno) {
	case EAGAIN:
		return 1;
	case EEXIST:
	case ENOENT:
		ioctl(t->uffd, UFFDIO_WAKE, &wake);
		return 0;
	case ESRCH:
		task_gone(t);
		return 0;
	default:
		pr_perror("task %d: cannot fill a zero page at %#llx", t->pid,
			  (unsigned long long)page);
		return -1;
	}
}

static int zero_fault_or_defer(struct ltask *t, uint64_t page)
{
	int ret = zero_fault(t, page);

	if (ret > 0) {
		deferred = xrealloc(deferred, (nr_deferred + 1) * sizeof(*deferred));
		deferred[nr_deferred++] = (struct deferred){ t, page };
		ret = 0;
	}
	return ret;
}

static int retry_deferred(void)
{
	size_t keep = 0;

	for (size_t i = 0; i < nr_deferred; i++) {
		struct deferred d = deferred[i];
		int ret = d.t->gone || range_find(d.t, d.page) ? 0 : zero_fault(d.t, d.page);

		if (ret < 0)
			return -1;
		if (ret > 0)
			deferred[keep++] = d;
	}
	nr_deferred = keep;
	return 0;
}

/* Threads waiting on pages the task dropped try again (and find them
 * absent, or unmapped). */
static void wake(struct ltask *t, uint64_t a, uint64_t b)
{
	struct uffdio_range r = { a, b - a };

	if (b > a)
		ioctl(t->uffd, UFFDIO_WAKE, &r);
}

static int fault(struct ltask *t, uint64_t addr)
{
	uint64_t page = addr & ~(PAGE_SIZE - 1), src, n;
	struct lrange *r = range_find(t, page);

	pr_debug("task %d: fault at %#llx%s", t->pid, (unsigned long long)addr,
		 r ? "" : ", no page in the checkpoint");
	if (!r) /* nothing the checkpoint has: memory reads as zeros */
		return zero_fault_or_defer(t, page);
	src = r->src + (page - r->start);
	n = (r->end - page) / PAGE_SIZE;
	if (n > FAULT_AHEAD_PAGES)
		n = FAULT_AHEAD_PAGES;
	ival_add(&faulted, t->pid, src, src + n * PAGE_SIZE);
	return request(LAZY_REQ_PAGES, t->pid, src, n);
}

/* Everything queued on t's userfaultfd: faults and the events of its mm. */
static int task_events(struct ltask *t)
{
	struct uffd_msg msg[16];

	while (!t->gone) {
		ssize_t n = read(t->uffd, msg, sizeof(msg));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0) {
			/* its mm is gone */
			task_gone(t);
			return 0;
		}
		for (size_t i = 0; i < n / sizeof(*msg); i++) {
			struct uffd_msg *m = &msg[i];
			struct ltask *child;
			int ret = 0;

			switch (m->event) {
			case UFFD_EVENT_PAGEFAULT:
				ret = fault(t, m->arg.pagefault.address);
				break;
			case UFFD_EVENT_FORK:
				/* the child has what t had pending, from the same pages;
				 * nothing pending, nothing to follow */
				if (!t->nr) {
					close((int)m->arg.fork.ufd);
					break;
				}
				child = task_new((int)m->arg.fork.ufd, t->pid, 0, -1);
				if (!child) {
					close((int)m->arg.fork.ufd);
					return -1;
				}
				pr_debug("task %d: forked, %zu ranges pending", t->pid, t->nr);
				fcntl(child->uffd, F_SETFL, O_NONBLOCK);
				for (size_t j = 0; j < t->nr; j++)
					range_add(child, t->r[j]);
				break;
			case UFFD_EVENT_REMAP:
				range_move(t, m->arg.remap.from, m->arg.remap.to, m->arg.remap.len);
				wake(t, m->arg.remap.from, m->arg.remap.from + m->arg.remap.len);
				break;
			case UFFD_EVENT_REMOVE:
			case UFFD_EVENT_UNMAP:
				range_drop(t, m->arg.remove.start, m->arg.remove.end);
				wake(t, m->arg.remove.start, m->arg.remove.end);
				break;
			default:
				pr_err("task %d: unexpected userfaultfd event %u", t->pid, m->event);
				return -1;
			}
			if (ret)
				return -1;
		}
	}
	return 0;
}

static int drain_events(void)
{
	for (size_t i = 0; i < nr_tasks; i++)
		if (!tasks[i]->gone && task_events(tasks[i]))
			return -1;
	return 0;
}

/* ---------------------------------------------------------------- source */

/* One frame of the response stream. */
static int source_frame(void)
{
	struct img_frame f;
	int more = imgr_next(resp, &f);

	if (more < 0)
		return -1;
	if (more == 0) {
		if (cur.open) {
			pr_err("the page source ended in the middle of pages of task %d", cur.pid);
			return -1;
		}
		source_ended = true;
		return 0;
	}
	if (f.hdr.kind == FRAME_RECORD && !strcmp(f.image, LAZY_PAGES_IMAGE)) {
		Stasis__LazyPages *lp = stasis__lazy_pages__unpack(NULL, f.hdr.len, f.data);
		int ret = 0;

		if (!lp || cur.open || lp->vaddr % PAGE_SIZE || !lp->nr_pages ||
		    lp->nr_pages > LAZY_REQ_MAX_PAGES || lp->vaddr + (uint64_t)lp->nr_pages * PAGE_SIZE < lp->vaddr) {
			pr_err("the page source sent an invalid LazyPages record");
			if (lp)
				stasis__lazy_pages__free_unpacked(lp, NULL);
			return -1;
		}
		if (lp->zero)
			ret = arrive(lp->pid, lp->vaddr, NULL, (uint64_t)lp->nr_pages * PAGE_SIZE);
		else
			cur = (typeof(cur)){ true, lp->pid, lp->vaddr,
					     (uint64_t)lp->nr_pages * PAGE_SIZE };
		stasis__lazy_pages__free_unpacked(lp, NULL);
		return ret;
	}
	if (f.hdr.kind != FRAME_PAGES)
		return 0;
	if (!cur.open || f.hdr.len > cur.left || f.hdr.len % PAGE_SIZE) {
		pr_err("the page source sent page data that no LazyPages record announced");
		return -1;
	}
	if (arrive(cur.pid, cur.vaddr, f.data, f.hdr.len))
		return -1;
	cur.vaddr += f.hdr.len;
	cur.left -= f.hdr.len;
	cur.open = cur.left > 0;
	return 0;
}

static bool prefetching_now(void)
{
	return request_all || (tree_done && now_ns() > last_arrival_ns + IDLE_PREFETCH_NS);
}

/* A background request for the first pages nobody asked for yet. */
static int prefetch(void)
{
	bool any = false;

	if (!prefetching_now() || prefetching.nr >= PREFETCH_WINDOW || now_ns() < next_prefetch_ns)
		return 0;
	for (size_t i = 0; i < nr_tasks; i++) {
		struct ltask *t = tasks[i];
		uint64_t best = UINT64_MAX, end = 0;

		for (size_t j = 0; !t->gone && j < t->nr; j++) {
			struct lrange *r = &t->r[j];
			uint64_t a = r->src > t->wm ? r->src : t->wm, b = r->src + (r->end - r->start);

			any = true;
			if (a < b && a < best) {
				best = a;
				end = b;
			}
		}
		if (best == UINT64_MAX)
			continue;
		if (end - best > PREFETCH_PAGES * PAGE_SIZE)
			end = best + PREFETCH_PAGES * PAGE_SIZE;
		t->wm = end;
		ival_add(&prefetching, t->pid, best, end);
		next_prefetch_ns = now_ns() + prefetch_delay_ms * 1000000ull;
		return request(LAZY_REQ_PAGES, t->pid, best, (end - best) / PAGE_SIZE);
	}
	/* all asked for once, some still missing (asked for while they were
	 * elsewhere): again from the start */
	if (any && !prefetching.nr)
		for (size_t i = 0; i < nr_tasks; i++)
			tasks[i]->wm = 0;
	return 0;
}

/*
 * Whether the mm of a task forked since (whose PID the fork event does not
 * give) is still there: a copy from a source that cannot be read installs
 * nothing, and fails with ESRCH only when the mm is gone.
 */
static bool forked_alive(struct ltask *t)
{
	static void *unreadable;
	struct uffdio_copy c;

	if (!unreadable) {
		unreadable = mmap(NULL, PAGE_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (unreadable == MAP_FAILED) {
			unreadable = NULL;
			return true;
		}
	}
	c = (struct uffdio_copy){ 0x10000, (unsigned long)unreadable, PAGE_SIZE,
				  UFFDIO_COPY_MODE_DONTWAKE, 0 };
	return !(ioctl(t->uffd, UFFDIO_COPY, &c) && (errno == ESRCH || c.copy == -ESRCH));
}

/* Tasks forked since that have exited (or exec'ed) go, and every task
 * gone is forgotten: a program forking all the time while its memory is
 * lazy does not pile them up. */
static void sweep_tasks(void)
{
	static uint64_t next_ns;
	size_t keep = 0;

	if (now_ns() < next_ns || nr_deferred)
		return;
	next_ns = now_ns() + 50 * 1000000ull;
	for (size_t i = 0; i < nr_tasks; i++) {
		struct ltask *t = tasks[i];

		if (!t->gone && !t->real && !forked_alive(t))
			task_gone(t);
		if (t->gone && !t->real) {
			free(t->r);
			free(t);
			continue;
		}
		tasks[keep++] = t;
	}
	nr_tasks = keep;
}

static bool all_in(void)
{
	for (size_t i = 0; i < nr_tasks; i++)
		if (!tasks[i]->gone && tasks[i]->nr)
			return false;
	return true;
}

/* ---------------------------------------------------------------- restorer */

static int take_task(int conn)
{
	struct lazy_range *ranges;
	struct ltask *t;
	uint32_t nr;
	pid_t pid;
	int uffd, pidfd, ret = lazy_recv_task(conn, &pid, &uffd, &pidfd, &ranges, &nr);

	if (ret <= 0) {
		if (!ret)
			pr_err("the restore failed (stasis-inject went away before the tree ran)");
		return -1;
	}
	if (!st.t0)
		st.t0 = now_ns();
	if (!pid) {
		free(ranges);
		tree_done = true;
		st.first_run = now_ns();
		return 0;
	}
	if (pidfd < 0) {
		pr_err("task %d: the restorer gave no pidfd with it", pid);
		close(uffd);
		free(ranges);
		return -1;
	}
	t = task_new(uffd, pid, pid, pidfd);
	if (!t) {
		close(uffd);
		close(pidfd);
		free(ranges);
		return -1;
	}
	fcntl(uffd, F_SETFL, O_NONBLOCK);
	for (uint32_t i = 0; i < nr; i++) {
		uint64_t len = ranges[i].nr_pages * PAGE_SIZE;

		if (ranges[i].start % PAGE_SIZE || !ranges[i].nr_pages ||
		    ranges[i].nr_pages > (1ull << 35) || ranges[i].start + len < ranges[i].start) {
			pr_err("task %d: invalid lazy range from the restorer", pid);
			free(ranges);
			return -1;
		}
		pr_debug("task %d: lazy %#llx-%#llx", pid, (unsigned long long)ranges[i].start,
			 (unsigned long long)(ranges[i].start + len));
		range_add(t, (struct lrange){ ranges[i].start, ranges[i].start + len, ranges[i].start });
		st.lazy += ranges[i].nr_pages;
	}
	free(ranges);
	return 0;
}

static int listen_socket(const char *dir)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char tmp[PATH_MAX], path[PATH_MAX];
	int sk;

	snprintf(path, sizeof(path), "%s/%s", dir, LAZY_SOCKET_NAME);
	snprintf(tmp, sizeof(tmp), "%s/.%s.%d", dir, LAZY_SOCKET_NAME, getpid());
	if (strlen(tmp) >= sizeof(sa.sun_path)) {
		pr_err("%s: path too long for a unix socket", tmp);
		return -1;
	}
	strcpy(sa.sun_path, tmp);
	sk = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	unlink(tmp);
	/* made under another name and renamed once it listens: a restorer
	 * that finds the socket can connect */
	if (sk < 0 || bind(sk, (struct sockaddr *)&sa, sizeof(sa)) || listen(sk, 1) ||
	    rename(tmp, path)) {
		pr_perror("cannot listen on %s", path);
		unlink(tmp);
		return -1;
	}
	return sk;
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *f)
{
	fprintf(f, "Usage: stasis-lazy-pages -D DIR [OPTIONS]\n"
		   "Fill the memory of a tree restored with stasis-inject --lazy-pages.\n\n"
		   "Options:\n"
		   "  -D, --images-dir DIR    the checkpoint (pages read from it without\n"
		   "                          --request-fd)\n"
		   "  -W, --work-dir DIR      where lazy-pages.socket is made (default: DIR)\n"
		   "      --request-fd N      requests to a page source go to descriptor N\n"
		   "      --response-fd N     its pages come from descriptor N\n"
		   "      --request-all       that source sends only what it is asked for: ask\n"
		   "                          for every page at once (stasis-serialize chain)\n"
		   "      --page-server       the pages come from the lazy page server of the\n"
		   "                          source (stasis dump --lazy-pages) at --address\n"
		   "                          and --port, through stasis-transfer and stasis-seal\n"
		   "      --address ADDR      the source host\n"
		   "      --port PORT         its page server's port\n"
		   "      --tls               TLS, both sides authenticated (as stasis-transfer)\n"
		   "      --tls-cacert FILE   --tls-cacrl FILE   --tls-cert FILE\n"
		   "      --tls-key FILE      (also the key that opens a sealed page stream)\n"
		   "      --tls-no-cn-verify  do not check that the source's certificate names ADDR\n"
		   "      --prefetch-delay MS wait MS ms between background requests (tests)\n"
		   "      --page-source       be the page source of DIR instead: requests on\n"
		   "                          standard input, pages on standard output\n"
		   "      --display-stats     print the lazy restore statistics at the end\n"
		   "  -v, --verbosity[=N]     raise or set the log level (0-4)\n"
		   "  -o, --log-file FILE     write log messages to FILE\n"
		   "  -h, --help              show this help and exit\n"
		   "  -V, --version           show the version and exit\n");
}

static void print_stats(void)
{
	uint64_t t0 = st.t0 ? st.t0 : now_ns();

	printf("Displaying lazy restore stats:\n");
	printf("Pages left lazy: %llu\n", (unsigned long long)st.lazy);
	printf("Pages served on fault: %llu\n", (unsigned long long)st.faulted);
	printf("Pages pushed: %llu\n", (unsigned long long)st.pushed);
	printf("Zero pages served on fault: %llu\n", (unsigned long long)st.zero);
	printf("Time to first instruction: %llu us\n",
	       (unsigned long long)(st.first_run ? st.first_run - t0 : 0) / 1000);
	printf("Time until all pages arrived: %llu us\n",
	       (unsigned long long)(st.all_in ? st.all_in - t0 : 0) / 1000);
	fflush(stdout);
}

/*
 * The restore's statistics (stats-restore.img of the work directory, when
 * the restore wrote one) get the daemon's figures: it is done after the
 * restore, which wrote it before handing over the end of the tree.
 */
static void save_stats(const char *wdir)
{
	char path[PATH_MAX];
	Stasis__RestoreStats *s;
	uint64_t t0 = st.t0 ? st.t0 : now_ns();

	snprintf(path, sizeof(path), "%s/stats-restore.img", wdir);
	s = (Stasis__RestoreStats *)imgfile_read_record(path, &stasis__restore_stats__descriptor, 1);
	if (!s)
		return;
	s->has_lazy_pages = s->has_lazy_pages_faulted = s->has_lazy_pages_pushed = true;
	s->has_lazy_pages_zero = s->has_lazy_first_run_us = s->has_lazy_all_pages_us = true;
	s->lazy_pages = st.lazy;
	s->lazy_pages_faulted = st.faulted;
	s->lazy_pages_pushed = st.pushed;
	s->lazy_pages_zero = st.zero;
	s->lazy_first_run_us = (st.first_run ? st.first_run - t0 : 0) / 1000;
	s->lazy_all_pages_us = (st.all_in ? st.all_in - t0 : 0) / 1000;
	if (imgfile_write_record(path, &s->base))
		pr_warn("the lazy restore statistics were not saved");
	stasis__restore_stats__free_unpacked(s, NULL);
}

/* Tells the source that every page is in, and reads its stream to the end. */
static int finish(void)
{
	st.all_in = now_ns();
	if (request(LAZY_REQ_DONE, 0, 0, 0))
		return -1;
	fcntl(req_fd, F_SETFL, 0);
	if (flush_requests())
		return -1;
	while (!source_ended) {
		struct img_frame f;
		int more = imgr_next(resp, &f);

		if (more < 0)
			return -1;
		source_ended = !more;
	}
	close(req_fd);
	/* the restorer lets go of its copies of the userfaultfds */
	if (restorer >= 0) {
		char c = LAZY_DONE_BYTE;

		if (send(restorer, &c, 1, MSG_NOSIGNAL) != 1)
			pr_info("stasis-inject is gone already (restored detached)");
		close(restorer);
	}
	for (size_t i = 0; i < nr_tasks; i++)
		if (!tasks[i]->gone)
			close(tasks[i]->uffd);
	if (source_pid > 0) {
		int status;

		if (waitpid(source_pid, &status, 0) != source_pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status)) {
			pr_err("the page source failed");
			return -1;
		}
	}
	return 0;
}

static int run(int lsk)
{
	int conn = -1;

	for (;;) {
		struct pollfd *p = xmalloc((nr_tasks + 3) * sizeof(*p));
		size_t np = 0, base;
		int timeout = -1, n;

		if (tree_done && all_in() && !cur.open && !nr_deferred) {
			free(p);
			return finish();
		}
		sweep_tasks();
		if (retry_deferred() || prefetch()) {
			free(p);
			return -1;
		}
		if (!request_all && tree_done && !all_in()) {
			/* wake up when the source has been idle long enough */
			uint64_t now = now_ns(), at = last_arrival_ns + IDLE_PREFETCH_NS;

			timeout = at > now ? (int)((at - now) / 1000000) + 1 : 0;
		}
		if (prefetching_now() && prefetching.nr < PREFETCH_WINDOW && !all_in()) {
			uint64_t now = now_ns();

			timeout = next_prefetch_ns > now ? (int)((next_prefetch_ns - now) / 1000000) + 1 : 0;
		}
		if (nr_deferred)
			timeout = 1;
		p[np++] = (struct pollfd){ conn >= 0 ? conn : lsk, POLLIN, 0 };
		if (tree_done)
			p[0].fd = -1;
		p[np++] = (struct pollfd){ source_ended ? -1 : resp_fd, POLLIN, 0 };
		p[np++] = (struct pollfd){ out_len ? req_fd : -1, POLLOUT, 0 };
		base = np;
		for (size_t i = 0; i < nr_tasks; i++)
			p[np++] = (struct pollfd){ tasks[i]->gone ? -1 : tasks[i]->uffd, POLLIN, 0 };
		n = poll(p, np, timeout);
		if (n < 0 && errno != EINTR) {
			pr_perror("poll");
			free(p);
			return -1;
		}
		if (n <= 0) {
			free(p);
			continue;
		}
		if (p[0].revents) {
			if (conn < 0) {
				conn = accept4(lsk, NULL, NULL, SOCK_CLOEXEC);
				if (conn < 0) {
					pr_perror("cannot accept the restorer");
					free(p);
					return -1;
				}
			} else if (take_task(conn)) {
				free(p);
				return -1;
			}
			if (tree_done)
				restorer = conn;
		}
		for (size_t i = base; i < np; i++)
			if (p[i].revents && task_events(tasks[i - base])) {
				free(p);
				return -1;
			}
		if ((p[2].revents && flush_requests()) || (p[1].revents && source_frame())) {
			free(p);
			return -1;
		}
		free(p);
		if (source_ended) {
			pr_err("the page source ended its stream before it was told that every page "
			       "is in");
			return -1;
		}
	}
}

/* --page-server and its options: values past any character */
enum {
	OPT_PAGE_SERVER = 0x100,
	OPT_ADDRESS,
	OPT_PORT,
	OPT_TLS,
	OPT_TLS_CACERT,
	OPT_TLS_CACRL,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_TLS_NO_CN_VERIFY,
};

/* the source host's page server (lazy-remote.c): transfer and seal */
static bool page_server;
static struct lazy_remote remote;
static pid_t remote_pids[2] = { -1, -1 };

static int start_page_server(void)
{
	int port;

	if (req_fd >= 0) {
		pr_err("--page-server and --request-fd/--response-fd exclude each other");
		return -1;
	}
	if (!remote.address || !remote.port) {
		pr_err("--page-server needs --address ADDR and --port PORT of the source");
		return -1;
	}
	if (opt_int("--port", remote.port, 1, 65535, "a TCP port, 1 to 65535", &port))
		return -1;
	return lazy_remote_start(&remote, &req_fd, &resp_fd, remote_pids);
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "images-dir", required_argument, NULL, 'D' },
		{ "work-dir", required_argument, NULL, 'W' },
		{ "request-fd", required_argument, NULL, 'Q' },
		{ "response-fd", required_argument, NULL, 'R' },
		{ "prefetch-delay", required_argument, NULL, 'P' },
		{ "request-all", no_argument, NULL, 'A' },
		{ "display-stats", no_argument, NULL, 'Y' },
		{ "page-source", no_argument, NULL, 'S' },
		{ "page-server", no_argument, NULL, OPT_PAGE_SERVER },
		{ "address", required_argument, NULL, OPT_ADDRESS },
		{ "port", required_argument, NULL, OPT_PORT },
		{ "tls", no_argument, NULL, OPT_TLS },
		{ "tls-cacert", required_argument, NULL, OPT_TLS_CACERT },
		{ "tls-cacrl", required_argument, NULL, OPT_TLS_CACRL },
		{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
		{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
		{ "tls-no-cn-verify", no_argument, NULL, OPT_TLS_NO_CN_VERIFY },
		COMMON_LONG_OPTS,
		{}
	};
	const char *dir = NULL, *wdir = NULL;
	bool page_source = false;
	int c, lsk, ret;

	log_init(argv[0]);
	while ((c = getopt_long(argc, argv, "D:W:" COMMON_SHORT_OPTS, lopts, NULL)) != -1) {
		/* the page server's programs log where we do */
		if (c == 'o')
			remote.log_file = optarg;
		switch (c) {
		case 'D':
			dir = optarg;
			break;
		case 'W':
			wdir = optarg;
			break;
		case 'Q':
			if (opt_fd("--request-fd", optarg, &req_fd))
				return 1;
			break;
		case 'R':
			if (opt_fd("--response-fd", optarg, &resp_fd))
				return 1;
			break;
		case 'P': {
			long long v;

			if (opt_long("--prefetch-delay", optarg, 0, 3600000, "milliseconds", &v))
				return 1;
			prefetch_delay_ms = v;
			break;
		}
		case 'Y':
			display_stats = true;
			break;
		case 'S':
			page_source = true;
			break;
		case 'A':
			request_all = true;
			break;
		case OPT_PAGE_SERVER:
			page_server = true;
			break;
		case OPT_ADDRESS:
			remote.address = optarg;
			break;
		case OPT_PORT:
			remote.port = optarg;
			break;
		case OPT_TLS:
			remote.tls = true;
			break;
		case OPT_TLS_CACERT:
			remote.tls_cacert = optarg;
			break;
		case OPT_TLS_CACRL:
			remote.tls_cacrl = optarg;
			break;
		case OPT_TLS_CERT:
			remote.tls_cert = optarg;
			break;
		case OPT_TLS_KEY:
			remote.tls_key = optarg;
			break;
		case OPT_TLS_NO_CN_VERIFY:
			remote.tls_no_cn_verify = true;
			break;
		default:
			switch (common_option(c, optarg, "stasis-lazy-pages", usage)) {
			case 1:
				break;
			case 0:
				usage(stderr);
				/* fall through */
			default:
				return 1;
			}
		}
	}
	if (!page_server && (remote.address || remote.port || remote.tls)) {
		pr_err("--address, --port and --tls are options of --page-server");
		return 1;
	}
	if (page_server && (!dir && !wdir)) {
		pr_err("-D DIR (or -W DIR) is needed: the restore finds the daemon there");
		return 1;
	}
	if (page_server && start_page_server())
		return 1;
	if (optind < argc || (!dir && !wdir) || ((req_fd < 0) != (resp_fd < 0)) ||
	    (req_fd < 0 && !dir)) {
		if (optind >= argc)
			pr_err("-D DIR is needed (or --request-fd and --response-fd with -W DIR)");
		usage(stderr);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	if (page_source) {
		if (!dir || req_fd >= 0) {
			pr_err("--page-source serves -D DIR on its standard input and output");
			return 1;
		}
		return lazy_source_serve(dir, STDIN_FILENO, STDOUT_FILENO);
	}
	if (req_fd < 0) {
		char cipher[PATH_MAX];

		snprintf(cipher, sizeof(cipher), "%s/cipher.img", dir);
		if (!access(cipher, F_OK)) {
			pr_err("%s is sealed: its pages cannot be read from the directory (a lazy "
			       "restore of a sealed dump takes them from its source, --page-server)",
			       dir);
			return 1;
		}
		request_all = true;
		source_pid = lazy_source_start(dir, &req_fd, &resp_fd);
		if (source_pid < 0)
			return 1;
	}
	fcntl(req_fd, F_SETFL, O_NONBLOCK);
	resp = imgr_open(resp_fd, "page source stream");
	lsk = listen_socket(wdir ? wdir : dir);
	if (lsk < 0)
		return 1;
	pr_info("waiting for the restore on %s/%s", wdir ? wdir : dir, LAZY_SOCKET_NAME);
	ret = run(lsk);
	close(lsk);
	{
		char path[PATH_MAX];

		snprintf(path, sizeof(path), "%s/%s", wdir ? wdir : dir, LAZY_SOCKET_NAME);
		unlink(path);
	}
	if (ret) {
		kill_tree();
		if (source_pid > 0)
			kill(source_pid, SIGKILL);
		/* the source, without our word, resumes its tree */
		for (int i = 0; i < 2; i++)
			if (remote_pids[i] > 0)
				kill(remote_pids[i], SIGKILL);
		pr_err("lazy restore failed; the restored tree was killed");
		return 1;
	}
	save_stats(wdir ? wdir : dir);
	if (display_stats)
		print_stats();
	pr_info("every page is in (%llu lazy pages)", (unsigned long long)st.lazy);
	return 0;
}
