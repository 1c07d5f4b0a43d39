// SPDX-License-Identifier: GPL-2.0
/*
 * Background snapshot: the frozen time of a dump that leaves the tree
 * running does not grow with its memory (docs/memory.md).
 *
 * While the tree is frozen, each task gets a synchronous userfaultfd (made
 * in the task by a remote call and moved out of its descriptor table at
 * once) on which its private anonymous mappings are registered, and the
 * pages to dump are write-protected. Pages that cannot be protected that way
 * (private file mappings, shared memory, a task using userfaultfd itself)
 * are copied into our memory while still frozen. Then the tree runs and the
 * pages are copied out in stream order, each range unprotected once copied.
 *
 * A write to a page not copied yet blocks in the kernel and is reported
 * here: the handler thread copies that page and its neighbours aside first,
 * unprotects them and wakes the writer; the stream takes them from there.
 *
 * The copy stays the memory of the freeze:
 *  - a protected page cannot change in place; the handler and the stream
 *    take one lock, and the handler reads the userfaultfd only under it, so
 *    no change of the address space is consumed during a copy; a change in
 *    flight (mremap, munmap, madvise) makes UFFDIO_WRITEPROTECT fail with
 *    EAGAIN, and the copy is thrown away and made again after its event;
 *  - mremap moves protected pages with their protection (EVENT_REMAP): the
 *    new place is followed;
 *  - madvise(MADV_DONTNEED, MADV_FREE, MADV_REMOVE) waits until its event is
 *    read: before reading, the handler copies the range of any thread
 *    blocked in madvise, and after, checks in pagemap that what it read was
 *    still the protected page; munmap reports after the pages are gone:
 *    pages not copied by then are lost and the dump fails;
 *  - a child forked meanwhile is not registered (no EVENT_FORK): its pages
 *    are its own, while the parent's stay protected; exit and execve end the
 *    mm, and the copy of what is left fails (the dump fails).
 * Whatever fails, closing the userfaultfds removes every protection and
 * wakes every waiter: the tree runs on untouched.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bgsnap.h"
#include "collect.h"
#include "stasis/fault.h"
#include "stasis/log.h"
#include "stasis/proc.h"
#include "stasis/uffd.h"
#include "stasis/util.h"
#include "stasis-image/image.h"

#define UFFD_FEATURES                                                                              \
	(UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP)
#define BATCH_PAGES 256		  /* the stream copies 1 MiB at a time */
#define AHEAD_PAGES 16		  /* a write fault copies its page and the next ones */
#define MAX_FROZEN  (512ul << 20) /* more unprotectable memory: a frozen dump */
#define MAX_MSGS    64
/* Tasks but the root this small are copied frozen, up to SMALL_BUDGET pages
 * in all: a short-lived child (fork, then exit or execve) would take its
 * memory with it before its turn in the stream. */
#define SMALL_TASK   8192
#define SMALL_BUDGET 16384

#define PME_PRESENT (1ull << 63)
#define PME_UFFD_WP (1ull << 57)

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif

enum { PG_PROT, PG_SIDE, PG_DONE, PG_LOST };

struct bg_run {
	bool bg;	/* protected, copied while the tree runs */
	char *frozen;	/* !bg: the run's pages, copied while frozen */
	uint8_t *state; /* bg: PG_* per page */
	char **side;	/* bg: a page copied ahead of the stream */
};

struct bg_remap {
	unsigned long from, to, len;
};

struct bg_fault {
	unsigned long orig; /* the page as it was at the freeze */
	unsigned long addr; /* where the writer waits */
	uint64_t seen_ns;
};

struct bg_task {
	struct ctask *ct;
	int uffd; /* -1: every page copied frozen */
	int mem_fd;
	struct bg_run *runs; /* parallel to ct->runs */
	size_t *order;	     /* bg runs by address, for lookups */
	size_t nr_order;
	struct bg_remap *remaps;
	size_t nr_remaps;
	struct bg_fault *faults; /* read, not served yet (EAGAIN) */
	size_t nr_faults, cap_faults;
	char lost[200]; /* why the copy cannot be exact, once it cannot */
};

static struct bg_task *btasks;
static _Atomic int nr_btasks; /* armed so far: the handler serves those */
static int max_btasks;
static bool started, running, failed_setup;
static pthread_t handler;
static int stop_fd = -1, kick_fd = -1; /* end the handler; a task armed */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct bgsnap_stats stats;
static uint64_t resume_ns;

bool bgsnap_wanted(void)
{
	return opts.background_snapshot && (opts.leave_running || opts.pre_dump) &&
	       !opts.leave_stopped && !opts.track_mem && !opts.has_prev_track_id &&
	       !opts.lazy_pages; /* lazy pages are served later, from the frozen tree */
}

bool bgsnap_running(void)
{
	return running;
}

const struct bgsnap_stats *bgsnap_stats(void)
{
	return &stats;
}

static struct bg_task *btask_of(struct ctask *ct)
{
	for (int i = 0; i < nr_btasks; i++)
		if (btasks[i].ct == ct)
			return &btasks[i];
	return NULL;
}

/* ---------------------------------------------------------------- addresses */

/* Where the page that was at orig at the freeze is now. */
static unsigned long orig_to_cur(const struct bg_task *t, unsigned long a)
{
	for (size_t k = 0; k < t->nr_remaps; k++)
		if (a >= t->remaps[k].from && a < t->remaps[k].from + t->remaps[k].len)
			a = t->remaps[k].to + (a - t->remaps[k].from);
	return a;
}

/* The page of the freeze that is at a now; ~0 when a place it left. */
static unsigned long cur_to_orig(const struct bg_task *t, unsigned long a)
{
	unsigned long o = a;

	for (size_t k = t->nr_remaps; k-- > 0;)
		if (o >= t->remaps[k].to && o < t->remaps[k].to + t->remaps[k].len)
			o = t->remaps[k].from + (o - t->remaps[k].to);
	return !t->nr_remaps || orig_to_cur(t, o) == a ? o : ~0ul;
}

/* The background run holding orig and the page's index in it. */
static struct bg_run *run_of(struct bg_task *t, unsigned long orig, size_t *run, size_t *page)
{
	size_t lo = 0, hi = t->nr_order;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct page_run *r = &t->ct->runs[t->order[mid]];

		if (orig < r->vaddr)
			hi = mid;
		else if (orig >= r->vaddr + r->nr_pages * PAGE_SIZE)
			lo = mid + 1;
		else {
			*run = t->order[mid];
			*page = (orig - r->vaddr) / PAGE_SIZE;
			return &t->runs[*run];
		}
	}
	return NULL;
}

static void set_lost(struct bg_task *t, const char *fmt, unsigned long start, unsigned long end)
{
	if (!t->lost[0])
		snprintf(t->lost, sizeof(t->lost), fmt, t->ct->pid, start, end);
}

/* ---------------------------------------------------------------- arming */

static bool protectable(const Stasis__Vma *v, const struct proc_vma *pv)
{
	if (v->flags & MAP_SHARED)
		return false;
	if (pv->vmflags & (VMF_UFFD | VMF_DROPPABLE | VMF_HUGETLB))
		return false;
	return v->kind == STASIS__VMA_KIND__ANON || v->kind == STASIS__VMA_KIND__HEAP ||
	       v->kind == STASIS__VMA_KIND__STACK;
}

/* The runs of ct split where mappings end, so that a run is protected or
 * copied frozen as a whole; the pages and their order are unchanged. */
static void split_runs(struct ctask *ct, const struct proc_vma *vmas, int nr)
{
	struct page_run *out = NULL;
	size_t n = 0, cap = 0;

	for (size_t i = 0; i < ct->nr_runs; i++) {
		struct page_run r = ct->runs[i];

		while (r.nr_pages) {
			unsigned long end = r.vaddr + r.nr_pages * PAGE_SIZE;
			struct page_run piece = r;

			for (int j = 0; !r.shm && j < nr; j++)
				if (vmas[j].start <= r.vaddr && r.vaddr < vmas[j].end) {
					if (vmas[j].end < end)
						end = vmas[j].end;
					break;
				}
			piece.nr_pages = (end - r.vaddr) / PAGE_SIZE;
			if (n == cap) {
				cap = cap ? 2 * cap : 16;
				out = xrealloc(out, cap * sizeof(*out));
			}
			out[n++] = piece;
			r.vaddr = end;
			r.shm_off += piece.nr_pages * PAGE_SIZE;
			r.nr_pages -= piece.nr_pages;
		}
	}
	free(ct->runs);
	ct->runs = out;
	ct->nr_runs = n;
}

/* A userfaultfd of the task's own, moved out of its descriptor table. */
static int make_uffd(struct ctask *ct)
{
	struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURES};
	long fd = parasite_call(ct, 0, SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK, 0, 0, 0);
	int pidfd, ours;

	if (fd < 0) {
		pr_info("task %d: no userfaultfd (%s): its memory is copied frozen", ct->pid,
			strerror(-fd));
		return -1;
	}
	pidfd = syscall(SYS_pidfd_open, ct->pid, 0);
	ours = pidfd >= 0 ? syscall(SYS_pidfd_getfd, pidfd, (int)fd, 0) : -1;
	if (pidfd >= 0)
		close(pidfd);
	parasite_call(ct, 0, SYS_close, fd, 0, 0, 0);
	if (ours < 0) {
		pr_perror("task %d: cannot take its userfaultfd", ct->pid);
		return -1;
	}
	if (ioctl(ours, UFFDIO_API, &api) || (api.features & UFFD_FEATURES) != UFFD_FEATURES) {
		pr_info("task %d: userfaultfd events not available: its memory is copied frozen",
			ct->pid);
		close(ours);
		return -1;
	}
	return ours;
}

static int protect(int uffd, unsigned long start, unsigned long len, bool on, bool wake)
{
	struct uffdio_writeprotect wp = {{start, len},
					 (on ? UFFDIO_WRITEPROTECT_MODE_WP : 0) |
					     (wake || on ? 0 : UFFDIO_WRITEPROTECT_MODE_DONTWAKE)};

	return ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) ? -errno : 0;
}

/* Ranges to write-protect, in order; their bytes are numbered end to end. */
struct wp_span {
	int uffd;
	const unsigned long (*ranges)[2]; /* start, len */
	size_t nr;
	unsigned long from, to; /* the part of the numbered bytes to protect */
	int err;		/* -errno of the first failure, or 0 */
};

static void *protect_span(void *arg)
{
	struct wp_span *sp = arg;
	unsigned long at = 0;

	for (size_t i = 0; i < sp->nr && at < sp->to && !sp->err; at += sp->ranges[i][1], i++) {
		unsigned long lo = at > sp->from ? at : sp->from;
		unsigned long hi = at + sp->ranges[i][1] < sp->to ? at + sp->ranges[i][1] : sp->to;

		if (lo < hi)
			sp->err = protect(sp->uffd, sp->ranges[i][0] + (lo - at), hi - lo, true, false);
	}
	return NULL;
}

#define WP_SPLIT_BYTES (64ul << 20)

/*
 * Write-protects the ranges: the kernel changes every page table entry, a
 * few tens of ns each, all of it while the tree is frozen; above
 * WP_SPLIT_BYTES the second half is done by a second thread, on the other
 * core. 0 or -errno.
 */
static int protect_ranges(int uffd, const unsigned long (*ranges)[2], size_t nr)
{
	unsigned long total = 0;
	pthread_t second;
	bool split;

	for (size_t i = 0; i < nr; i++)
		total += ranges[i][1];

	unsigned long half = total / 2 / PAGE_SIZE * PAGE_SIZE;
	struct wp_span a = { uffd, ranges, nr, 0, half, 0 }, b = { uffd, ranges, nr, half, total, 0 };

	split = total >= WP_SPLIT_BYTES && !pthread_create(&second, NULL, protect_span, &b);
	if (!split)
		a.to = total;
	protect_span(&a);
	if (split)
		pthread_join(second, NULL);
	return a.err ? a.err : b.err;
}

int bgsnap_arm(struct ctask *ct)
{
	struct bg_task *t;
	struct proc_vma *vmas;
	int nr, uffd = -1;

	if (failed_setup || !started)
		return 0;
	if (nr_btasks == max_btasks) {
		pr_err("task %d: more tasks than the tree had", ct->pid);
		return -1;
	}
	/* the tree is frozen since mm_collect read them: they are as read */
	vmas = ct->kvmas;
	nr = ct->nr_kvmas;
	ct->kvmas = NULL;
	if (!vmas && (nr = proc_read_vmas(ct->pid, &vmas)) < 0)
		return -1;
	t = &btasks[nr_btasks];
	*t = (struct bg_task){.ct = ct, .uffd = -1, .mem_fd = ct->threads[0].mem_fd};
	split_runs(ct, vmas, nr);
	t->runs = xzalloc((ct->nr_runs + 1) * sizeof(*t->runs));

	/* a task with a userfaultfd of its own keeps it to itself */
	bool own_uffd = false;

	for (int i = 0; i < nr; i++)
		own_uffd |= (vmas[i].vmflags & VMF_UFFD) != 0;
	if (own_uffd)
		pr_info("task %d uses userfaultfd itself: its memory is copied frozen", ct->pid);
	else
		uffd = make_uffd(ct);

	unsigned long (*wp)[2] = xmalloc((ct->nr_runs + 1) * sizeof(*wp));
	size_t nr_wp = 0;

	for (size_t v = 0; uffd >= 0 && v < ct->nr_vmas; v++) {
		const Stasis__Vma *pv = ct->vmas[v];
		const struct proc_vma *kv = NULL;
		bool any = false;

		for (int j = 0; j < nr && !kv; j++)
			if (vmas[j].start == pv->start && vmas[j].end == pv->end)
				kv = &vmas[j];
		if (!kv || !protectable(pv, kv))
			continue;
		for (size_t i = 0; i < ct->nr_runs && !any; i++)
			any = !ct->runs[i].shm && !ct->runs[i].in_parent && !ct->runs[i].in_prev &&
			      ct->runs[i].vaddr >= pv->start && ct->runs[i].vaddr < pv->end;
		if (!any)
			continue;

		struct uffdio_register reg = {
		    {pv->start, pv->end - pv->start}, UFFDIO_REGISTER_MODE_WP, 0};

		if (ioctl(uffd, UFFDIO_REGISTER, &reg)) {
			pr_debug("task %d: mapping %lx-%lx copied frozen: %s", ct->pid,
				 (unsigned long)pv->start, (unsigned long)pv->end, strerror(errno));
			continue;
		}
		for (size_t i = 0; i < ct->nr_runs; i++) {
			struct page_run *r = &ct->runs[i];

			if (r->shm || r->in_parent || r->in_prev || r->vaddr < pv->start ||
			    r->vaddr >= pv->end)
				continue;
			wp[nr_wp][0] = r->vaddr;
			wp[nr_wp++][1] = r->nr_pages * PAGE_SIZE;
			t->runs[i].bg = true;
		}
	}
	free(vmas);
	int err = uffd >= 0 ? protect_ranges(uffd, (const unsigned long(*)[2])wp, nr_wp) : 0;

	free(wp);
	if (err) {
		pr_err("task %d: cannot write-protect its memory: %s", ct->pid, strerror(-err));
		close(uffd);
		return -1;
	}
	t->uffd = uffd;
	for (size_t i = 0; i < ct->nr_runs; i++)
		if (t->runs[i].bg) {
			t->runs[i].state = xzalloc(ct->runs[i].nr_pages);
			t->runs[i].side = xzalloc(ct->runs[i].nr_pages * sizeof(char *));
			t->order = xrealloc(t->order, (t->nr_order + 1) * sizeof(*t->order));
			t->order[t->nr_order++] = i;
		}
	/* runs come in address order within the anonymous mappings */
	for (size_t i = 1; i < t->nr_order; i++)
		if (ct->runs[t->order[i]].vaddr < ct->runs[t->order[i - 1]].vaddr) {
			pr_err("task %d: page runs out of order", ct->pid);
			if (uffd >= 0)
				close(uffd);
			t->uffd = -1;
			return -1;
		}
	/* served from now on: the kernel itself writes to the task's memory
	 * (rseq) when a remote call returns to it, and waits for the copy */
	uint64_t one = 1;

	pthread_mutex_lock(&lock);
	nr_btasks++;
	pthread_mutex_unlock(&lock);
	if (write(kick_fd, &one, sizeof(one)) != sizeof(one))
		pr_perror("cannot wake the write-fault handler");
	return 0;
}

/* ---------------------------------------------------------------- frozen part */

static int shm_pread(int fd, char *buf, size_t len, unsigned long off)
{
	while (len) {
		ssize_t n = pread(fd, buf, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) { /* past the end of an object that shrank */
			memset(buf, 0, len);
			return 0;
		}
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int copy_frozen(struct bg_task *t, size_t i)
{
	struct page_run *r = &t->ct->runs[i];
	size_t len = r->nr_pages * PAGE_SIZE;
	char *buf = xmalloc(len);

	if (r->shm) {
		char path[128];
		int fd;

		snprintf(path, sizeof(path), "/proc/%d/map_files/%lx-%lx", t->ct->pid, r->vma_start,
			 r->vma_end);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || shm_pread(fd, buf, len, r->shm_off)) {
			pr_perror("cannot read shared memory %s", path);
			if (fd >= 0)
				close(fd);
			free(buf);
			return -1;
		}
		close(fd);
	} else if (rmem_read(&t->ct->threads[0], r->vaddr, buf, len)) {
		free(buf);
		return -1;
	}
	t->runs[i].frozen = buf;
	stats.pages_frozen += r->nr_pages;
	return 0;
}

/* ---------------------------------------------------------------- copying */

static ssize_t mem_pread(int fd, char *buf, size_t len, unsigned long addr)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, addr + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += n;
	}
	return 0;
}

/*
 * Pages [first, first + n) of background run i, all PG_PROT and contiguous
 * where they are now, into buf; unprotected once read. Under the lock.
 * 0, -EAGAIN (a change of the address space is in flight: nothing
 * unprotected, copy again after its event) or another -errno.
 */
static int copy_protected(struct bg_task *t, size_t i, size_t first, size_t n, char *buf, bool wake)
{
	unsigned long orig = t->ct->runs[i].vaddr + first * PAGE_SIZE;
	unsigned long cur = orig_to_cur(t, orig);
	int err;

	if (mem_pread(t->mem_fd, buf, n * PAGE_SIZE, cur))
		/* gone, or moving: protecting again tells (it changes nothing) */
		err = protect(t->uffd, cur, n * PAGE_SIZE, true, false) ?: -EIO;
	else
		err = protect(t->uffd, cur, n * PAGE_SIZE, false, wake);
	if (err == -EAGAIN)
		return err;
	if (err) {
		set_lost(t,
			 err == -ESRCH
			     ? "task %d exited or ran another program before its memory "
			       "%lx-%lx was copied"
			     : "task %d unmapped or moved memory %lx-%lx before it was copied",
			 orig, orig + n * PAGE_SIZE);
		return err;
	}
	return 0;
}

/* The largest n <= max such that pages [first, first + n) of run i are
 * PG_PROT and lie together where they are now. */
static size_t prot_span(struct bg_task *t, size_t i, size_t first, size_t max)
{
	const struct page_run *r = &t->ct->runs[i];
	unsigned long base = orig_to_cur(t, r->vaddr + first * PAGE_SIZE);
	size_t n = 0;

	while (n < max && first + n < r->nr_pages && t->runs[i].state[first + n] == PG_PROT &&
	       (!t->nr_remaps ||
		orig_to_cur(t, r->vaddr + (first + n) * PAGE_SIZE) == base + n * PAGE_SIZE))
		n++;
	return n;
}

/* Copies the page of run i at index p and the next ones aside. */
static int copy_ahead(struct bg_task *t, size_t i, size_t p)
{
	static char buf[AHEAD_PAGES * PAGE_SIZE];
	size_t n = prot_span(t, i, p, AHEAD_PAGES);
	int err;

	if (!n)
		return 0;
	err = copy_protected(t, i, p, n, buf, true);
	if (err)
		return err;
	for (size_t k = 0; k < n; k++) {
		t->runs[i].side[p + k] = xmalloc(PAGE_SIZE);
		memcpy(t->runs[i].side[p + k], buf + k * PAGE_SIZE, PAGE_SIZE);
		t->runs[i].state[p + k] = PG_SIDE;
	}
	stats.pages_on_fault += n;
	return 0;
}

/* ---------------------------------------------------------------- handler */

static void wake(int uffd, unsigned long addr)
{
	struct uffdio_range r = {addr & ~(PAGE_SIZE - 1), PAGE_SIZE};

	ioctl(uffd, UFFDIO_WAKE, &r);
}

/* 0 when served, -EAGAIN to try again after the next events. */
static int serve_fault(struct bg_task *t, struct bg_fault *f)
{
	size_t i, p;
	struct bg_run *r = run_of(t, f->orig, &i, &p);
	int err = 0;

	if (r && r->state[p] == PG_PROT)
		err = copy_ahead(t, i, p);
	else /* not ours to copy (or already copied): never leave it blocked */
		err = protect(t->uffd, f->addr & ~(PAGE_SIZE - 1), PAGE_SIZE, false, true);
	if (err == -EAGAIN)
		return err;
	wake(t->uffd, f->addr);
	uint64_t waited = now_ns() - f->seen_ns;

	if (waited > stats.longest_wait_ns)
		stats.longest_wait_ns = waited;
	return 0;
}

/*
 * The protected pages of run i from p copied aside, left protected: their
 * unprotection waits (-EAGAIN) for the event of the madvise that will drop
 * them, and reading that event lets the drop go. Still protected, they are
 * still as at the freeze; a later write to one is let through as for any
 * page copied already.
 */
static void copy_aside(struct bg_task *t, size_t i, size_t p)
{
	static char buf[AHEAD_PAGES * PAGE_SIZE];
	size_t n = prot_span(t, i, p, AHEAD_PAGES);

	if (!n || mem_pread(t->mem_fd, buf, n * PAGE_SIZE,
			    orig_to_cur(t, t->ct->runs[i].vaddr + p * PAGE_SIZE)))
		return; /* its event tells what became of it */
	for (size_t k = 0; k < n; k++) {
		t->runs[i].side[p + k] = xmalloc(PAGE_SIZE);
		memcpy(t->runs[i].side[p + k], buf + k * PAGE_SIZE, PAGE_SIZE);
		t->runs[i].state[p + k] = PG_SIDE;
	}
	stats.pages_on_fault += n;
}

/*
 * Every protected page of [start, end) (addresses of now) copied aside.
 * With aside (no mremap in flight, so that the addresses of now are those
 * known), one that cannot be unprotected yet is copied all the same.
 */
static void copy_range(struct bg_task *t, unsigned long start, unsigned long end, bool aside)
{
	for (unsigned long a = start & ~(PAGE_SIZE - 1); a < end; a += PAGE_SIZE) {
		size_t i, p;
		struct bg_run *r = run_of(t, cur_to_orig(t, a), &i, &p);

		if (!r || r->state[p] != PG_PROT || copy_ahead(t, i, p) != -EAGAIN)
			continue;
		if (!aside)
			return; /* its event comes: handled then */
		copy_aside(t, i, p);
	}
}

/*
 * madvise() that drops pages waits until its event is read, and reading it
 * lets the pages go: copy the range of any thread blocked in madvise first.
 */
#define PRECOPY_MAX 64 /* threads in madvise looked at, at once */

static void precopy_madvise(struct bg_task *t)
{
	char path[320], buf[256];
	unsigned long ranges[PRECOPY_MAX][2];
	int n = 0;
	bool remap = false;
	DIR *d;
	struct dirent *de;

	snprintf(path, sizeof(path), "/proc/%d/task", t->ct->pid);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		unsigned long nr, addr, len, advice;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/syscall", t->ct->pid, de->d_name);
		if (proc_read_file(path, buf, sizeof(buf)) <= 0 ||
		    sscanf(buf, "%lu %lx %lx %lx", &nr, &addr, &len, &advice) != 4)
			continue;
		/* a move whose event is pending: our addresses are old ones */
		remap |= nr == SYS_mremap;
		if (nr == SYS_madvise && n < PRECOPY_MAX &&
		    (advice == MADV_DONTNEED || advice == MADV_FREE || advice == MADV_REMOVE ||
		     advice == MADV_DONTNEED_LOCKED)) {
			ranges[n][0] = addr;
			ranges[n++][1] = addr + len;
		}
	}
	closedir(d);
	for (int k = 0; k < n; k++)
		copy_range(t, ranges[k][0], ranges[k][1], !remap);
}

/* After MADV_DONTNEED's event: copy what is left, if it still is. */
static void on_remove(struct bg_task *t, unsigned long start, unsigned long end)
{
	static char buf[PAGE_SIZE];
	char path[64];
	int pm;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", t->ct->pid);
	pm = open(path, O_RDONLY | O_CLOEXEC);
	for (unsigned long a = start & ~(PAGE_SIZE - 1); a < end; a += PAGE_SIZE) {
		unsigned long orig = cur_to_orig(t, a);
		size_t i, p;
		struct bg_run *r = run_of(t, orig, &i, &p);
		uint64_t pme = 0;

		if (!r || r->state[p] != PG_PROT)
			continue;
		/* still protected after the read: the page read was the
		 * frozen one (a dropped page comes back unprotected) */
		if (pm < 0 || mem_pread(t->mem_fd, buf, PAGE_SIZE, a) ||
		    pread(pm, &pme, 8, a / PAGE_SIZE * 8) != 8 || !(pme & PME_PRESENT) ||
		    !(pme & PME_UFFD_WP)) {
			set_lost(t, "task %d dropped memory %lx-%lx (madvise) before it was copied",
				 orig, orig + PAGE_SIZE);
			r->state[p] = PG_LOST;
			continue;
		}
		r->side[p] = xmalloc(PAGE_SIZE);
		memcpy(r->side[p], buf, PAGE_SIZE);
		r->state[p] = PG_SIDE;
		stats.pages_on_fault++;
	}
	if (pm >= 0)
		close(pm);
}

static void on_unmap(struct bg_task *t, unsigned long start, unsigned long end)
{
	for (unsigned long a = start & ~(PAGE_SIZE - 1); a < end; a += PAGE_SIZE) {
		unsigned long orig = cur_to_orig(t, a);
		size_t i, p;
		struct bg_run *r = run_of(t, orig, &i, &p);

		if (r && r->state[p] == PG_PROT) {
			set_lost(t, "task %d unmapped memory %lx-%lx before it was copied", orig,
				 end);
			r->state[p] = PG_LOST;
		}
	}
}

/* How many write faults wait on t's userfaultfd, unread. */
static long pending_faults(struct bg_task *t)
{
	char path[64], buf[512], *p;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", t->uffd);
	if (proc_read_file(path, buf, sizeof(buf)) <= 0 || !(p = strstr(buf, "pending:")))
		return 0;
	return strtol(p + 8, NULL, 10);
}

static void add_fault(struct bg_task *t, unsigned long orig, unsigned long addr)
{
	if (t->nr_faults == t->cap_faults) {
		t->cap_faults = t->cap_faults ? 2 * t->cap_faults : 16;
		t->faults = xrealloc(t->faults, t->cap_faults * sizeof(*t->faults));
	}
	t->faults[t->nr_faults++] = (struct bg_fault){orig, addr, now_ns()};
}

/* Reads what t's userfaultfd holds and acts on it. Under the lock. */
static void handle_task(struct bg_task *t)
{
	struct uffd_msg msgs[MAX_MSGS];
	long pending = pending_faults(t);
	ssize_t n;

	/* faults are read before events: with none pending, what is
	 * readable may be an event that lets madvise go once read */
	if (!pending)
		precopy_madvise(t);
	n = read(t->uffd, msgs,
		 (pending ? (pending < MAX_MSGS ? pending : MAX_MSGS) : 1) * sizeof(*msgs));
	for (ssize_t k = 0; n > 0 && k < n / (ssize_t)sizeof(*msgs); k++) {
		struct uffd_msg *m = &msgs[k];

		switch (m->event) {
		case UFFD_EVENT_PAGEFAULT:
			add_fault(t, cur_to_orig(t, m->arg.pagefault.address & ~(PAGE_SIZE - 1)),
				  m->arg.pagefault.address);
			break;
		case UFFD_EVENT_REMAP:
			t->remaps = xrealloc(t->remaps, (t->nr_remaps + 1) * sizeof(*t->remaps));
			t->remaps[t->nr_remaps++] =
			    (struct bg_remap){m->arg.remap.from, m->arg.remap.to, m->arg.remap.len};
			break;
		case UFFD_EVENT_REMOVE:
			on_remove(t, m->arg.remove.start, m->arg.remove.end);
			break;
		case UFFD_EVENT_UNMAP:
			on_unmap(t, m->arg.remove.start, m->arg.remove.end);
			break;
		}
	}
}

static void serve_faults(struct bg_task *t)
{
	size_t keep = 0;

	for (size_t k = 0; k < t->nr_faults; k++)
		if (serve_fault(t, &t->faults[k]) == -EAGAIN)
			t->faults[keep++] = t->faults[k];
	t->nr_faults = keep;
}

static void *handler_main(void *arg)
{
	struct pollfd *p = xzalloc((max_btasks + 2) * sizeof(*p));

	(void)arg;
	for (;;) {
		bool waiting = false;
		int n = 0;

		int armed = nr_btasks;

		p[n++] = (struct pollfd){stop_fd, POLLIN, 0};
		p[n++] = (struct pollfd){kick_fd, POLLIN, 0};
		for (int i = 0; i < armed; i++) {
			p[n++] = (struct pollfd){btasks[i].uffd, POLLIN, 0};
			waiting |= btasks[i].nr_faults > 0;
		}
		if (poll(p, n, waiting ? 1 : -1) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			break;
		if (p[1].revents) {
			uint64_t v;

			if (read(kick_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				break;
			continue; /* poll the new task's userfaultfd too */
		}
		pthread_mutex_lock(&lock);
		for (int i = 0; i < armed; i++) {
			if (btasks[i].uffd < 0)
				continue;
			if (p[i + 2].revents & POLLIN)
				handle_task(&btasks[i]);
			serve_faults(&btasks[i]);
		}
		pthread_mutex_unlock(&lock);
	}
	free(p);
	return NULL;
}

/* ---------------------------------------------------------------- the dump */

int bgsnap_prepare(int nr)
{
	int err;

	if (!bgsnap_wanted())
		return 0;
	btasks = xzalloc(nr * sizeof(*btasks));
	max_btasks = nr;
	/* an eventfd can only be polled: it cannot be a tree's descriptor */
	stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (stop_fd < 0 || kick_fd < 0) {
		pr_perror("cannot make an eventfd");
		return -1;
	}
	err = pthread_create(&handler, NULL, handler_main, NULL);
	if (err) {
		pr_err("cannot start the write-fault handler: %s", strerror(err));
		close(stop_fd);
		stop_fd = -1;
		return -1;
	}
	started = true;
	return 0;
}

/* t's protected pages copied now (still frozen), and t released. */
static int freeze_task(struct bg_task *t)
{
	struct ctask *ct = t->ct;

	for (size_t i = 0; i < ct->nr_runs; i++) {
		struct bg_run *br = &t->runs[i];
		size_t len = ct->runs[i].nr_pages * PAGE_SIZE;

		if (!br->bg)
			continue;
		br->frozen = xmalloc(len);
		for (size_t p = 0; p < ct->runs[i].nr_pages; p++) {
			char *dst = br->frozen + p * PAGE_SIZE;

			/* a page the kernel wrote (rseq) was copied before */
			if (br->state[p] == PG_SIDE)
				memcpy(dst, br->side[p], PAGE_SIZE);
			else if (mem_pread(t->mem_fd, dst, PAGE_SIZE,
					   ct->runs[i].vaddr + p * PAGE_SIZE)) {
				pr_perror("cannot read memory of task %d at %#lx", ct->pid,
					  ct->runs[i].vaddr + p * PAGE_SIZE);
				return -1;
			}
			free(br->side[p]);
		}
		free(br->side);
		free(br->state);
		br->side = NULL;
		br->state = NULL;
		br->bg = false;
		stats.pages_frozen += ct->runs[i].nr_pages;
	}
	t->nr_order = 0;
	close(t->uffd);
	t->uffd = -1;
	return 0;
}

/* The small tasks, smallest first, copied frozen within the budget. */
static int freeze_small_tasks(void)
{
	size_t budget = SMALL_BUDGET;

	for (;;) {
		struct bg_task *best = NULL;
		size_t best_n = 0;

		for (int i = 0; i < nr_btasks; i++) {
			size_t n = 0;

			if (btasks[i].uffd < 0 || btasks[i].ct->pid == collect_tree()->tasks[0].pid)
				continue;
			for (size_t j = 0; j < btasks[i].ct->nr_runs; j++)
				if (btasks[i].runs[j].bg)
					n += btasks[i].ct->runs[j].nr_pages;
			if (n <= SMALL_TASK && n <= budget && (!best || n < best_n)) {
				best = &btasks[i];
				best_n = n;
			}
		}
		if (!best)
			return 0;
		budget -= best_n;
		if (freeze_task(best))
			return -1;
	}
}

int bgsnap_start(void)
{
	uint64_t frozen_bytes = 0;
	int err;

	if (!started)
		return 0;
	pthread_mutex_lock(&lock);
	err = freeze_small_tasks();
	pthread_mutex_unlock(&lock);
	if (err)
		return -1;
	for (int i = 0; i < nr_btasks; i++)
		for (size_t j = 0; j < btasks[i].ct->nr_runs; j++) {
			const struct page_run *r = &btasks[i].ct->runs[j];

			if (!btasks[i].runs[j].bg && !r->in_parent && !r->in_prev)
				frozen_bytes += r->nr_pages * PAGE_SIZE;
		}
	if (frozen_bytes > MAX_FROZEN) {
		pr_info("%llu MiB of memory cannot be write-protected: the dump is copied frozen",
			(unsigned long long)(frozen_bytes >> 20));
		bgsnap_abort();
		return 0;
	}
	for (int i = 0; i < nr_btasks; i++)
		for (size_t j = 0; j < btasks[i].ct->nr_runs; j++) {
			const struct page_run *r = &btasks[i].ct->runs[j];

			if (!btasks[i].runs[j].bg && !btasks[i].runs[j].frozen && !r->in_parent &&
			    !r->in_prev && copy_frozen(&btasks[i], j))
				return -1;
		}
	running = true;
	stats.used = true;
	resume_ns = now_ns();
	return 0;
}

int bgsnap_write_pages(struct ctask *ct, struct img_writer *w)
{
	static char *buf;
	struct bg_task *t = btask_of(ct);
	char name[32];

	if (!running || !t)
		return mm_write_pages(ct, w);
	if (!buf)
		buf = xmalloc(BATCH_PAGES * PAGE_SIZE);
	snprintf(name, sizeof(name), "pages-%u", ct->pages_id);
	for (size_t i = 0; i < ct->nr_runs; i++) {
		struct page_run *r = &ct->runs[i];
		struct bg_run *br = &t->runs[i];

		if (r->in_parent || r->in_prev)
			continue;
		if (!br->bg) {
			if (imgw_pages(w, name, br->frozen, r->nr_pages * PAGE_SIZE))
				return -1;
			free(br->frozen);
			br->frozen = NULL;
			continue;
		}
		for (size_t first = 0; first < r->nr_pages; first += BATCH_PAGES) {
			size_t n =
			    r->nr_pages - first < BATCH_PAGES ? r->nr_pages - first : BATCH_PAGES;

			for (int tries = 0;; tries++) {
				bool again = false;

				pthread_mutex_lock(&lock);
				for (size_t k = 0; k < n && !again && !t->lost[0];) {
					size_t p = first + k, span;

					if (br->state[p] == PG_SIDE) {
						memcpy(buf + k * PAGE_SIZE, br->side[p], PAGE_SIZE);
						free(br->side[p]);
						br->side[p] = NULL;
						br->state[p] = PG_DONE;
						k++;
						continue;
					}
					if (br->state[p] != PG_PROT) {
						k++;
						continue;
					}
					span = prot_span(t, i, p, n - k);
					int err = copy_protected(t, i, p, span, buf + k * PAGE_SIZE,
								 true);

					if (err == -EAGAIN) {
						again = true;
						break;
					}
					if (err)
						break;
					memset(br->state + p, PG_DONE, span);
					k += span;
				}
				pthread_mutex_unlock(&lock);
				if (t->lost[0]) {
					pr_err("%s; the background snapshot cannot be exact (dump "
					       "again, or with --no-background-snapshot)",
					       t->lost);
					return -1;
				}
				if (!again)
					break;
				if (tries > 10000) {
					pr_err("task %d: its address space kept changing while its "
					       "memory was copied",
					       ct->pid);
					return -1;
				}
				usleep(100); /* let the handler read the event */
			}
			if (imgw_pages(w, name, buf, n * PAGE_SIZE))
				return -1;
			if (first == 0 && fault_hit("collect-pages"))
				return -1;
		}
	}
	return 0;
}

static void stop_handler(void)
{
	uint64_t one = 1;

	if (!started)
		return;
	if (write(stop_fd, &one, sizeof(one)) != sizeof(one))
		pr_perror("cannot stop the write-fault handler");
	pthread_join(handler, NULL);
	close(stop_fd);
	close(kick_fd);
	stop_fd = kick_fd = -1;
	started = running = false;
}

static void release(void)
{
	for (int i = 0; i < nr_btasks; i++) {
		struct bg_task *t = &btasks[i];

		/* the kernel unregisters, unprotects and wakes everything */
		if (t->uffd >= 0)
			close(t->uffd);
		t->uffd = -1;
		for (size_t j = 0; j < t->ct->nr_runs; j++) {
			free(t->runs[j].frozen);
			if (t->runs[j].side)
				for (size_t k = 0; k < t->ct->runs[j].nr_pages; k++)
					free(t->runs[j].side[k]);
			free(t->runs[j].side);
			free(t->runs[j].state);
		}
		free(t->runs);
		free(t->order);
		free(t->remaps);
		free(t->faults);
	}
	free(btasks);
	btasks = NULL;
	nr_btasks = 0;
}

int bgsnap_finish(void)
{
	int ret = 0;

	if (!running) {
		bgsnap_abort(); /* armed but copied frozen in the end */
		return 0;
	}
	stop_handler();
	stats.resumed_ns = resume_ns;
	stats.copy_ns = now_ns() - resume_ns;
	for (int i = 0; i < nr_btasks; i++)
		if (btasks[i].lost[0]) {
			pr_err("%s; the background snapshot cannot be exact", btasks[i].lost);
			ret = -1;
		}
	release();
	return ret;
}

void bgsnap_abort(void)
{
	stop_handler();
	release();
	failed_setup = true;
}
