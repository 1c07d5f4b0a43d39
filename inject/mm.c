// SPDX-License-Identifier: GPL-2.0
/*
 * Rebuild the address space: everything of the stub unmapped but the
 * gadget, the vDSO put back at its old address, each mapping recreated,
 * pages written in, protections and mm fields (PR_SET_MM_MAP) set last.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <asm/prctl.h>
#include <linux/ptrace.h>
#include <linux/rseq.h>
#include <linux/userfaultfd.h>

#include "inject.h"
#include "memfd.h"
#include "stasis/log.h"
#include "stasis/proc.h"
#include "stasis/util.h"

#define TASK_SIZE_MAX 0x7ffffffff000UL
#define GADGET_SIZE ((1 + GADGET_SCRATCH_PAGES) * PAGE_SIZE)

/* Where page data goes: the runs of pagemap-PID, in order. */
struct page_cursor {
	char image[32];
	Stasis__PagemapEntry **runs; /* runs with data in the page image */
	bool *lazy;		     /* runs[i] is left to the lazy-pages daemon */
	size_t nr, idx;
	Stasis__PagemapEntry **inherited; /* in_parent runs */
	size_t nr_inherited;
	uint64_t in_run; /* bytes of runs[idx] already filled */
	uint64_t image_off;
	int shm_fd; /* the object of runs[idx], for its object pages, or -1 */
	/* private anonymous mappings made empty here (not inherited): filled
	 * with UFFDIO_COPY on fill_uffd where it could register them */
	struct fresh_range {
		uint64_t start, end;
	} *fresh;
	size_t nr_fresh;
	int fill_uffd;
	uint64_t copied, written; /* bytes in by UFFDIO_COPY, through /proc */
};

static bool special_kind(Stasis__VmaKind k)
{
	return k == STASIS__VMA_KIND__VDSO || k == STASIS__VMA_KIND__VVAR ||
	       k == STASIS__VMA_KIND__VVAR_VCLOCK || k == STASIS__VMA_KIND__VSYSCALL;
}

static int unregister_rseq(struct itask *t)
{
	struct ptrace_rseq_configuration rc;
	long r;

	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, t->hpid, sizeof(rc), &rc) != sizeof(rc) ||
	    !rc.rseq_abi_pointer)
		return 0;
	r = ISYS(t, SYS_rseq, rc.rseq_abi_pointer, rc.rseq_abi_size, RSEQ_FLAG_UNREGISTER,
		 rc.signature);
	if (r) {
		pr_err("task %d: cannot unregister rseq: %s", t->pid, strerror(-r));
		return -1;
	}
	return 0;
}

/* The vvar/vdso block goes back where it was, as one piece. */
static int restore_vdso(struct itask *t)
{
	unsigned long block = 0, vdso = 0;
	struct proc_vma *now;
	int nr;
	long r;

	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		Stasis__Vma *v = t->mm->vmas[i];

		if (v->kind == STASIS__VMA_KIND__VVAR && !block)
			block = v->start;
		if (v->kind == STASIS__VMA_KIND__VDSO)
			vdso = v->start;
	}
	if (!vdso)
		return 0; /* the task had unmapped its vDSO */
	if (!block)
		block = vdso;
	r = ISYS(t, SYS_arch_prctl, ARCH_MAP_VDSO_64, block);
	if (r < 0) {
		pr_err("task %d: cannot map the vDSO at %#lx: %s", t->pid, block, strerror(-r));
		return -1;
	}
	nr = proc_read_maps(t->hpid, &now);
	if (nr < 0)
		return -1;
	r = -1;
	for (int i = 0; i < nr; i++)
		if (!strcmp(now[i].path, "[vdso]"))
			r = now[i].start == vdso ? 0 : -1;
	free(now);
	if (r) {
		pr_err("task %d: the vDSO of this kernel does not fit the checkpoint's layout "
		       "(wanted at %#lx)",
		       t->pid, vdso);
		return -1;
	}
	return 0;
}

int mm_prepare(struct itask *t)
{
	long r;

	if (t->pages && t->pages->nr_inherited) {
		pr_err("task %d: the checkpoint shares pages with a parent it is not forked from",
		       t->pid);
		return -1;
	}
	if (unregister_rseq(t))
		return -1;
	r = ISYS(t, SYS_munmap, 0, t->gadget);
	if (!r)
		r = ISYS(t, SYS_munmap, t->gadget + GADGET_SIZE, TASK_SIZE_MAX - t->gadget - GADGET_SIZE);
	if (r) {
		pr_err("task %d: cannot clear the address space: %s", t->pid, strerror(-r));
		return -1;
	}
	return restore_vdso(t);
}

static const struct {
	uint64_t vmf;
	int advice;
} vma_advice[] = {
	{ VMF_DONTCOPY, MADV_DONTFORK },  { VMF_DONTDUMP, MADV_DONTDUMP },
	{ VMF_HUGEPAGE, MADV_HUGEPAGE },  { VMF_NOHUGEPAGE, MADV_NOHUGEPAGE },
	{ VMF_MERGEABLE, MADV_MERGEABLE }, { VMF_RANDREAD, MADV_RANDOM },
	{ VMF_SEQREAD, MADV_SEQUENTIAL }, { VMF_WIPEONFORK, MADV_WIPEONFORK },
};

/* mmap's MAP_HUGETLB flags for huge pages of size bytes (a power of two). */
static int hugetlb_map_flags(uint64_t size)
{
	return MAP_HUGETLB | (__builtin_ctzll(size) << MAP_HUGE_SHIFT);
}

/* The first mapping of a shared memory object in the tree, which creates it. */
static void shm_owner(struct itree *tr, uint64_t shmid, struct itask **ot, Stasis__Vma **ov)
{
	for (size_t i = 0; i < tr->nr; i++) {
		struct itask *t = &tr->tasks[i];

		for (size_t j = 0; task_alive(t) && j < t->mm->n_vmas; j++)
			if (t->mm->vmas[j]->kind == STASIS__VMA_KIND__SHMEM &&
			    t->mm->vmas[j]->shmid == shmid) {
				*ot = t;
				*ov = t->mm->vmas[j];
				return;
			}
	}
}

/* A remote open of the shared memory object mapped at start-end in task pid. */
static long open_map_file(struct itask *t, pid_t pid, uint64_t start, uint64_t end)
{
	char path[128];
	unsigned long at;
	long fd;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", pid,
		 (unsigned long long)start, (unsigned long long)end);
	at = scratch_put(t, 0, path, strlen(path) + 1);
	if (!at)
		return -1;
	fd = ISYS(t, SYS_openat, AT_FDCWD, at, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		pr_err("task %d: cannot open %s: %s", t->pid, path, strerror(-fd));
	return fd;
}

/*
 * The shared memory object v maps, as a descriptor in t: made by its first
 * mapping in the tree (ov), with its size at the dump, through a mapping
 * of the whole object where v's own does not show all of it; opened through
 * the first mapping's map_files link by every later one.
 */
static long open_shared(struct itree *tr, struct itask *t, Stasis__Vma *v)
{
	uint64_t size = v->has_file_size ? v->file_size : v->pgoff + (v->end - v->start);
	uint64_t unit = v->has_hugetlb_page_size ? v->hugetlb_page_size : PAGE_SIZE;
	int hugetlb = v->has_hugetlb_page_size ? hugetlb_map_flags(unit) : 0;
	struct itask *ot = NULL;
	Stasis__Vma *ov = NULL;
	long fd, tmp, r;

	shm_owner(tr, v->shmid, &ot, &ov);
	if (!ot) {
		pr_err("task %d: shared memory at %#llx has no owner in the checkpoint", t->pid,
		       (unsigned long long)v->start);
		return -1;
	}
	if (ov != v)
		return open_map_file(t, ot->hpid, ov->start, ov->end);
	size = (size ? size + unit - 1 : unit) / unit * unit;
	if (size > TASK_SIZE_MAX) {
		pr_err("task %d: invalid shared memory size at %#llx in the checkpoint", t->pid,
		       (unsigned long long)v->start);
		return -1;
	}
	tmp = ISYS(t, SYS_mmap, 0, size, PROT_NONE, MAP_SHARED | MAP_ANONYMOUS | hugetlb, -1, 0);
	if (tmp < 0 && tmp > -4096) {
		pr_err("task %d: cannot make shared memory of %llu bytes: %s", t->pid,
		       (unsigned long long)size, strerror(-tmp));
		return -1;
	}
	fd = open_map_file(t, t->hpid, tmp, tmp + size);
	r = ISYS(t, SYS_munmap, tmp, size);
	if (r && fd >= 0) {
		pr_err("task %d: cannot unmap shared memory at %#lx: %s", t->pid, tmp, strerror(-r));
		ISYS(t, SYS_close, fd);
		return -1;
	}
	return fd;
}

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#define MADV_GUARD_REMOVE 103
#endif
#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08
#endif
#define SYS_MSEAL 462 /* mseal (6.10+), newer than the headers here */

/*
 * The guard regions of v, exactly: those it inherited from a parent go
 * first when the parent had any (removing leaves other pages alone).
 */
static int install_guards(struct itask *t, Stasis__Vma *v, bool inherited)
{
	long r;

	if (inherited) {
		r = ISYS(t, SYS_madvise, v->start, v->end - v->start, MADV_GUARD_REMOVE);
		if (r) {
			pr_err("task %d: cannot clear the guard regions of %#llx: %s", t->pid,
			       (unsigned long long)v->start, strerror(-r));
			return -1;
		}
	}
	for (size_t i = 0; i < v->n_guards; i++) {
		Stasis__PageRange *g = v->guards[i];

		if (g->start < v->start || g->start >= v->end || g->start % PAGE_SIZE ||
		    g->nr_pages > (v->end - g->start) / PAGE_SIZE) {
			pr_err("task %d: invalid guard region at %#llx in the checkpoint", t->pid,
			       (unsigned long long)g->start);
			return -1;
		}
		r = ISYS(t, SYS_madvise, g->start, g->nr_pages * PAGE_SIZE, MADV_GUARD_INSTALL);
		if (r) {
			pr_err("task %d: cannot install the guard region at %#llx: %s", t->pid,
			       (unsigned long long)g->start, strerror(-r));
			return -1;
		}
	}
	return 0;
}

static int map_one(struct itree *tr, struct itask *t, Stasis__Vma *v, bool has_pages)
{
	uint64_t off = v->pgoff;
	unsigned long len = v->end - v->start;
	int flags = (v->flags & (MAP_SHARED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN |
				 MAP_NORESERVE)) |
		    MAP_FIXED;
	int prot = v->prot & (PROT_READ | PROT_WRITE | PROT_EXEC);
	long fd = -1, r;

	/* Pages are written through /proc/PID/mem, which may not write a
	 * read-only shared mapping: make it writable until they are in. */
	if (has_pages && (v->flags & MAP_SHARED))
		prot |= PROT_WRITE;
	if (v->kind == STASIS__VMA_KIND__SYSV_SHM) {
		/* attached again from its IPC namespace (ipcns.c) */
		if (ipcns_map(t, v))
			return -1;
		goto advice;
	}
	if (v->has_packet_ring) {
		/* the ring of the restored socket, mapped whole */
		fd = packet_ring_open(t, v);
		if (fd < 0)
			return -1;
		flags &= ~MAP_ANONYMOUS;
		off = 0;
	} else if (v->kind == STASIS__VMA_KIND__FILE) {
		/* writable, or allowed to become writable (opened read-write) */
		int oflags = (v->flags & MAP_SHARED) &&
				     ((v->prot & PROT_WRITE) || (v->madv & VMF_MAYWRITE)) ?
				     O_RDWR :
				     O_RDONLY;
		size_t plen = v->path ? strlen(v->path) : 0;
		unsigned long path;

		/* a deleted file: the one remade from the checkpoint */
		if (plen > 10 && !strcmp(v->path + plen - 10, " (deleted)"))
			fd = ghost_map_open(t, v, oflags);
		else if (!v->path || !(path = scratch_put(t, 0, v->path, strlen(v->path) + 1)))
			return -1;
		else
			fd = ISYS(t, SYS_openat, AT_FDCWD, path, oflags | O_CLOEXEC);
		if (fd < 0) {
			pr_err("task %d: cannot open %s to map it at %#llx: %s", t->pid, v->path,
			       (unsigned long long)v->start, strerror(-fd));
			return -1;
		}
		flags &= ~MAP_ANONYMOUS;
	} else if (memfd_vma(v)) {
		/* the object made from the memfds image, at its own offset */
		fd = memfd_map_open(t, v);
		if (fd < 0)
			return -1;
		flags &= ~MAP_ANONYMOUS;
	} else if (v->kind == STASIS__VMA_KIND__SHMEM) {
		/* at its offset in the object, shared or private */
		fd = open_shared(tr, t, v);
		if (fd < 0)
			return -1;
		flags &= ~MAP_ANONYMOUS;
	} else {
		off = 0;
		/* private anonymous memory the kernel may drop: its own type */
		if (v->madv & VMF_DROPPABLE)
			flags = (flags & ~MAP_PRIVATE) | MAP_DROPPABLE;
		if (v->has_hugetlb_page_size)
			flags |= hugetlb_map_flags(v->hugetlb_page_size);
	}
	r = ISYS(t, SYS_mmap, v->start, len, prot, flags, fd, off);
	if (fd >= 0)
		ISYS(t, SYS_close, fd);
	if ((unsigned long)r != v->start) {
		pr_err("task %d: cannot map %#llx-%#llx%s%s: %s", t->pid,
		       (unsigned long long)v->start, (unsigned long long)v->end, v->path ? " " : "",
		       v->path ? v->path : "", r < 0 ? strerror(-r) : "placed elsewhere");
		return -1;
	}
	/* UFFDIO_COPY into hugetlb takes whole huge pages, and page frames
	 * are smaller: those pages are written through /proc */
	if ((flags & (MAP_PRIVATE | MAP_ANONYMOUS)) == (MAP_PRIVATE | MAP_ANONYMOUS) && t->pages &&
	    !v->has_hugetlb_page_size) {
		struct page_cursor *c = t->pages;

		c->fresh = xrealloc(c->fresh, (c->nr_fresh + 1) * sizeof(*c->fresh));
		c->fresh[c->nr_fresh++] = (struct fresh_range){ v->start, v->end };
	}
advice:
	for (size_t i = 0; i < ARRAY_SIZE(vma_advice); i++) {
		if (!(v->madv & vma_advice[i].vmf))
			continue;
		r = ISYS(t, SYS_madvise, v->start, len, vma_advice[i].advice);
		if (r)
			pr_warn("task %d: madvise(%d) on %#llx failed: %s", t->pid,
				vma_advice[i].advice, (unsigned long long)v->start, strerror(-r));
	}
	return install_guards(t, v, false);
}

/* Whether the checkpoint has page data for v (runs of the loaded pagemap). */
static bool vma_has_pages(struct itask *t, Stasis__Vma *v)
{
	struct page_cursor *c = t->pages;

	for (size_t i = 0; c && i < c->nr; i++)
		if (c->runs[i]->vaddr < v->end &&
		    c->runs[i]->vaddr + (uint64_t)c->runs[i]->nr_pages * PAGE_SIZE > v->start)
			return true;
	return false;
}

/* Mappings made by mm_restore_vmas (aio rings: aio_restore). */
static bool vma_mapped_here(const Stasis__Vma *v)
{
	return !special_kind(v->kind) && v->kind != STASIS__VMA_KIND__AIO;
}

/* A hugetlb page size mmap can name, and a mapping made of whole pages. */
static bool valid_hugetlb(const Stasis__Vma *v)
{
	uint64_t hps = v->hugetlb_page_size;

	return hps > PAGE_SIZE && !(hps & (hps - 1)) && __builtin_ctzll(hps) <= MAP_HUGE_MASK &&
	       !((v->start | v->end | v->pgoff) & (hps - 1)) &&
	       (v->kind == STASIS__VMA_KIND__ANON || v->kind == STASIS__VMA_KIND__SHMEM);
}

int mm_check_vmas(struct itask *t)
{
	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		Stasis__Vma *v = t->mm->vmas[i];

		if (!vma_mapped_here(v))
			continue;
		/* the gadget once placed (not yet when called by the fuzz harness) */
		if (v->start >= v->end || v->end > TASK_SIZE_MAX || (v->start | v->end) % PAGE_SIZE ||
		    (t->gadget && v->start < t->gadget + GADGET_SIZE && v->end > t->gadget)) {
			pr_err("task %d: invalid mapping %#llx-%#llx in the checkpoint", t->pid,
			       (unsigned long long)v->start, (unsigned long long)v->end);
			return -1;
		}
		if (v->has_hugetlb_page_size && !valid_hugetlb(v)) {
			pr_err("task %d: invalid hugetlb mapping %#llx-%#llx in the checkpoint",
			       t->pid, (unsigned long long)v->start, (unsigned long long)v->end);
			return -1;
		}
	}
	return 0;
}

int mm_restore_vmas(struct itree *tr, struct itask *t)
{
	if (mm_check_vmas(t))
		return -1;
	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		Stasis__Vma *v = t->mm->vmas[i];

		if (vma_mapped_here(v) &&
		    map_one(tr, t, v, (v->flags & MAP_SHARED) && vma_has_pages(t, v)))
			return -1;
	}
	return 0;
}


/*
 * Whether the pages of pe are left to the lazy-pages daemon (1), written
 * here (0), or cannot be restored (-1, logged). With --lazy-pages every run
 * in private anonymous memory is lazy but those a child shares
 * copy-on-write (in_parent in the child): the daemon fills each task
 * apart, so these are written here, before the children are forked, and
 * stay shared. A child's shared pages are lazy only where its parent's are
 * (marked lazy at the dump: their data is at the page source, the child's
 * copy too). Runs marked lazy at the dump have no data here at all.
 */
static int cursor_lazy(struct itask *t, Stasis__PagemapEntry *pe)
{
	uint64_t len = (uint64_t)pe->nr_pages * PAGE_SIZE;
	bool lazy;

	if (pe->lazy && !opts.lazy_pages) {
		pr_err("task %d: the checkpoint was dumped with --lazy-pages; restore it with "
		       "--lazy-pages",
		       t->pid);
		return -1;
	}
	if (!opts.lazy_pages || pe->has_shm_off)
		lazy = pe->lazy;
	else if (pe->in_parent)
		lazy = t->parent && lazy_overlaps(t->parent, pe->vaddr, len);
	else
		lazy = pe->lazy ||
		       (img_run_lazy(t->mm, pe->vaddr, len) && !lazy_shared_with_child(t, pe->vaddr, len));
	if (lazy && !img_run_lazy(t->mm, pe->vaddr, len)) {
		pr_err("task %d: its pages at %#llx cannot be filled lazily (not private "
		       "anonymous memory, or locked or sealed)",
		       t->pid, (unsigned long long)pe->vaddr);
		return -1;
	}
	if (lazy)
		t->nr_lazy_pages[pe->in_parent] += pe->nr_pages;
	return lazy;
}

static int cursor_load(struct itask *t, struct page_cursor *c, char *pages_name, size_t size)
{
	char name[32];
	Stasis__PagemapHead *head;
	unsigned n;

	snprintf(name, sizeof(name), "pagemap-%d", t->pid);
	n = records_count(name);
	head = records_get(name, 0, &stasis__pagemap_head__descriptor);
	if (!head) {
		pr_err("the checkpoint has no pagemap for task %d", t->pid);
		return -1;
	}
	snprintf(pages_name, size, "pages-%u", head->pages_id);
	protobuf_c_message_free_unpacked(&head->base, NULL);
	c->runs = xmalloc(n * sizeof(*c->runs));
	c->lazy = xzalloc(n * sizeof(*c->lazy));
	c->inherited = xmalloc(n * sizeof(*c->inherited));
	for (unsigned i = 1; i < n; i++) {
		Stasis__PagemapEntry *pe = records_get(name, i, &stasis__pagemap_entry__descriptor);
		int lazy;

		if (!pe)
			return -1;
		lazy = cursor_lazy(t, pe);
		if (lazy < 0) {
			protobuf_c_message_free_unpacked(&pe->base, NULL);
			return -1;
		}
		if (lazy)
			lazy_add_range(t, pe->vaddr, pe->nr_pages);
		if (pe->lazy) {
			/* no data in the stream: the page source has it */
			protobuf_c_message_free_unpacked(&pe->base, NULL);
			continue;
		}
		if (pe->in_prev) {
			/* stasis-serialize pack puts them back from the parent */
			pr_err("task %d: the stream lacks the pages left to its parent checkpoint; "
			       "restore it from its images directory",
			       t->pid);
			return -1;
		}
		if (pe->in_parent) {
			c->inherited[c->nr_inherited++] = pe;
		} else {
			c->lazy[c->nr] = lazy;
			c->runs[c->nr++] = pe;
		}
	}
	return 0;
}

/* Whether the pages of pe lie in a hugetlb mapping of t. */
static bool run_in_hugetlb(struct itask *t, const Stasis__PagemapEntry *pe)
{
	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		Stasis__Vma *v = t->mm->vmas[i];

		if (pe->vaddr >= v->start && pe->vaddr < v->end)
			return v->has_hugetlb_page_size;
	}
	return false;
}

/* The shared memory object behind the pages of pe, opened here. */
static int open_object(struct itask *t, Stasis__PagemapEntry *pe)
{
	char path[128];
	int fd;

	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		Stasis__Vma *v = t->mm->vmas[i];

		if (v->kind != STASIS__VMA_KIND__SHMEM || pe->vaddr < v->start ||
		    pe->vaddr >= v->end || (uint64_t)pe->nr_pages * PAGE_SIZE > v->end - pe->vaddr)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", t->hpid,
			 (unsigned long long)v->start, (unsigned long long)v->end);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			pr_perror("cannot open the shared memory of task %d at %s", t->pid, path);
		return fd;
	}
	pr_err("task %d: the checkpoint has shared memory pages at %#llx outside its mappings",
	       t->pid, (unsigned long long)pe->vaddr);
	return -1;
}

static int write_object(struct itask *t, int fd, const char *data, uint64_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, data, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			pr_err("task %d: cannot write its shared memory at offset %#llx: %s", t->pid,
			       (unsigned long long)off, n < 0 ? strerror(errno) : "no room");
			return -1;
		}
		data += n;
		off += n;
		len -= n;
	}
	return 0;
}

/*
 * A userfaultfd of t's mm, in stasis-inject: made by the task, taken with
 * pidfd_getfd, closed in the task. The fd, or -errno.
 */
int mm_task_uffd(struct itask *t, int flags)
{
	int pidfd = syscall(SYS_pidfd_open, t->hpid, 0), fd;
	long remote = ISYS(t, SYS_userfaultfd, flags);

	if (remote < 0) {
		fd = remote;
	} else {
		fd = pidfd >= 0 ? syscall(SYS_pidfd_getfd, pidfd, (int)remote, 0) : -1;
		if (fd < 0)
			fd = -errno;
		ISYS(t, SYS_close, remote);
	}
	if (pidfd >= 0)
		close(pidfd);
	return fd;
}

/*
 * Pages written into mappings made empty here go in with UFFDIO_COPY: the
 * kernel allocates each page and copies into it, where a write through
 * /proc/PID/mem clears it first, copies into a bounce page and then into
 * the task. No one serves faults in those mappings while they are
 * registered: the task stays stopped, no remote call is made, a fault in
 * the kernel there fails at once (user-mode faults only) instead of
 * waiting, and the userfaultfd is closed once the task's pages are in.
 */
static void fill_uffd_open(struct itask *t, struct page_cursor *c)
{
	struct uffdio_api api = { .api = UFFD_API };
	int uffd;

	c->fill_uffd = -1;
	if (!c->nr_fresh)
		return;
	/* user-mode faults only: allowed to an unprivileged task too */
	uffd = mm_task_uffd(t, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (uffd < 0) {
		pr_debug("task %d: no userfaultfd (%s): pages written through /proc", t->pid,
			 strerror(-uffd));
		c->nr_fresh = 0;
		return;
	}
	if (ioctl(uffd, UFFDIO_API, &api)) {
		close(uffd);
		c->nr_fresh = 0;
		return;
	}
	size_t n = 0;

	for (size_t i = 0; i < c->nr_fresh; i++) {
		struct uffdio_register reg = { { c->fresh[i].start,
						 c->fresh[i].end - c->fresh[i].start },
					       UFFDIO_REGISTER_MODE_MISSING, 0 };

		if (!ioctl(uffd, UFFDIO_REGISTER, &reg) && (reg.ioctls & (1ull << _UFFDIO_COPY)))
			c->fresh[n++] = c->fresh[i];
		else
			pr_debug("task %d: %#llx-%#llx written through /proc", t->pid,
				 (unsigned long long)c->fresh[i].start,
				 (unsigned long long)c->fresh[i].end);
	}
	c->nr_fresh = n;
	c->fill_uffd = uffd;
}

static void fill_uffd_close(struct page_cursor *c)
{
	if (c->fill_uffd >= 0)
		close(c->fill_uffd); /* unregisters every mapping */
	c->fill_uffd = -1;
	c->nr_fresh = 0;
}

/* len bytes at addr of a registered mapping: copied in; a page already
 * there (inherited, or touched by the kernel) written through /proc. */
static int uffd_write(struct itask *t, struct page_cursor *c, uint64_t addr, const char *data,
		      uint64_t len)
{
	while (len) {
		struct uffdio_copy cp = { addr, (uintptr_t)data, len, 0, 0 };
		uint64_t done;

		if (!ioctl(c->fill_uffd, UFFDIO_COPY, &cp)) {
			done = len;
			c->copied += done;
		} else if (cp.copy > 0) {
			done = cp.copy;
			c->copied += done;
		} else if (cp.copy == -EEXIST || errno == EEXIST) {
			if (rmem_write(&t->rt, addr, data, PAGE_SIZE))
				return -1;
			done = PAGE_SIZE;
			c->written += done;
		} else if (errno == EAGAIN || errno == EINTR) {
			continue;
		} else {
			pr_err("task %d: cannot write its memory at %#llx: %s", t->pid,
			       (unsigned long long)addr, strerror(errno));
			return -1;
		}
		addr += done;
		data += done;
		len -= done;
	}
	return 0;
}

/* Private memory: UFFDIO_COPY in the registered mappings, /proc elsewhere
 * (a run may span mappings of both kinds). */
static int write_private(struct itask *t, struct page_cursor *c, uint64_t addr, const char *data,
			 uint64_t len)
{
	while (len) {
		uint64_t n = len, next = UINT64_MAX;
		int r = 1;

		for (size_t i = 0; i < c->nr_fresh && r > 0; i++) {
			if (c->fresh[i].start <= addr && addr < c->fresh[i].end) {
				if (c->fresh[i].end - addr < n)
					n = c->fresh[i].end - addr;
				r = uffd_write(t, c, addr, data, n);
			} else if (c->fresh[i].start > addr && c->fresh[i].start < next) {
				next = c->fresh[i].start;
			}
		}
		if (r > 0) {
			if (next - addr < n)
				n = next - addr;
			r = rmem_write(&t->rt, addr, data, n);
			c->written += n;
		}
		if (r)
			return -1;
		addr += n;
		data += n;
		len -= n;
	}
	return 0;
}

/* Writes one frame's data into the task, following the runs. */
static int cursor_fill(struct itask *t, struct page_cursor *c, const struct img_frame *f)
{
	const char *data = f->data;
	uint64_t left = f->hdr.len;

	if (f->hdr.offset != c->image_off) {
		pr_err("%s: page frame %llu out of order", f->image, (unsigned long long)f->hdr.seq);
		return -1;
	}
	while (left) {
		Stasis__PagemapEntry *pe;
		uint64_t room, n;

		if (c->idx >= c->nr) {
			pr_err("%s: more page data than the pagemap of task %d describes", f->image,
			       t->pid);
			return -1;
		}
		pe = c->runs[c->idx];
		room = (uint64_t)pe->nr_pages * PAGE_SIZE - c->in_run;
		n = left < room ? left : room;
		/* hugetlbfs has no write(): a hugetlb object is written
		 * through the task's own (writable, shared) mapping of it */
		bool by_object = pe->has_shm_off && !run_in_hugetlb(t, pe);

		if (by_object && c->shm_fd < 0 && (c->shm_fd = open_object(t, pe)) < 0)
			return -1;
		if (c->lazy[c->idx])
			; /* the daemon fills it */
		else if (by_object ? write_object(t, c->shm_fd, data, n, pe->shm_off + c->in_run)
				   : write_private(t, c, pe->vaddr + c->in_run, data, n))
			return -1;
		data += n;
		left -= n;
		c->in_run += n;
		c->image_off += n;
		if (c->in_run == (uint64_t)pe->nr_pages * PAGE_SIZE) {
			c->idx++;
			c->in_run = 0;
			if (c->shm_fd >= 0)
				close(c->shm_fd);
			c->shm_fd = -1;
		}
	}
	return 0;
}

static void cursor_free(struct page_cursor *c)
{
	if (!c)
		return;
	if (c->shm_fd >= 0)
		close(c->shm_fd);
	for (size_t i = 0; i < c->nr; i++)
		protobuf_c_message_free_unpacked(&c->runs[i]->base, NULL);
	for (size_t i = 0; i < c->nr_inherited; i++)
		protobuf_c_message_free_unpacked(&c->inherited[i]->base, NULL);
	fill_uffd_close(c);
	free(c->fresh);
	free(c->runs);
	free(c->lazy);
	free(c->inherited);
	free(c);
}

int mm_load_pagemap(struct itask *t)
{
	t->pages = xzalloc(sizeof(*t->pages));
	t->pages->shm_fd = -1;
	t->pages->fill_uffd = -1;
	return cursor_load(t, t->pages, t->pages->image, sizeof(t->pages->image));
}

void mm_free_pagemap(struct itask *t)
{
	cursor_free(t->pages);
	t->pages = NULL;
}

int mm_fill_pages(struct itask *t, struct img_reader *r, struct img_frame *f, int *more)
{
	struct page_cursor *c = t->pages;
	int ret = 0;

	fill_uffd_open(t, c);
	for (; *more > 0; *more = imgr_next(r, f)) {
		if (f->hdr.kind != FRAME_PAGES)
			continue; /* records after the pages (statistics) */
		if (strcmp(f->image, c->image))
			break;
		if (cursor_fill(t, c, f)) {
			ret = -1;
			break;
		}
	}
	fill_uffd_close(c);
	if (ret || *more < 0)
		return -1;
	pr_info("task %d: %llu private pages copied in by userfaultfd, %llu written through /proc",
		t->pid, (unsigned long long)(c->copied / PAGE_SIZE),
		(unsigned long long)(c->written / PAGE_SIZE));
	if (c->idx != c->nr || c->in_run) {
		pr_err("%s: the pages of task %d at %#llx are missing (truncated or reordered "
		       "checkpoint)",
		       c->image, t->pid, (unsigned long long)c->runs[c->idx]->vaddr);
		return -1;
	}
	return 0;
}

int mm_end_of_stream(struct img_reader *r, struct img_frame *f, int more)
{
	for (; more > 0; more = imgr_next(r, f))
		if (f->hdr.kind == FRAME_PAGES) {
			pr_err("page image %s belongs to no task, or comes out of order", f->image);
			return -1;
		}
	return more;
}

/* Whether a mapping of t is inherited as it is from the task it was forked from. */
static bool vma_kept(struct itask *t, struct itask *src, Stasis__Vma *v)
{
	if (!src || v->kind == STASIS__VMA_KIND__AIO)
		return false;
	if (special_kind(v->kind)) {
		/* the vDSO block stays where the source has it */
		for (size_t i = 0; i < src->mm->n_vmas; i++)
			if (src->mm->vmas[i]->kind == v->kind && src->mm->vmas[i]->start == v->start &&
			    src->mm->vmas[i]->end == v->end)
				return v->kind != STASIS__VMA_KIND__VSYSCALL;
		return false;
	}
	for (size_t i = 0; i < src->mm->n_vmas; i++)
		if (img_vma_inherited(v, src->mm->vmas[i]))
			return true;
	(void)t;
	return false;
}

/* Whether the mapping of src that t inherits as v has guard regions. */
static bool src_guards(struct itask *src, Stasis__Vma *v)
{
	for (size_t i = 0; i < src->mm->n_vmas; i++)
		if (img_vma_inherited(v, src->mm->vmas[i]))
			return src->mm->vmas[i]->n_guards;
	return false;
}

/* Drops, in a kept mapping, every page that is not one the parent shares. */
static int zap_not_inherited(struct itask *t, Stasis__Vma *v)
{
	struct page_cursor *c = t->pages;
	unsigned long from = v->start;

	for (size_t i = 0; i <= c->nr_inherited; i++) {
		unsigned long to = v->end, next = v->end;
		long r;

		if (i < c->nr_inherited) {
			Stasis__PagemapEntry *pe = c->inherited[i];

			if (pe->vaddr >= v->end || pe->vaddr + pe->nr_pages * PAGE_SIZE <= v->start)
				continue;
			to = pe->vaddr > from ? pe->vaddr : from;
			next = pe->vaddr + pe->nr_pages * PAGE_SIZE;
		}
		if (to > from) {
			r = ISYS(t, SYS_madvise, from, to - from, MADV_DONTNEED);
			if (r) {
				pr_err("task %d: cannot drop pages at %#lx: %s", t->pid, from,
				       strerror(-r));
				return -1;
			}
		}
		if (next > from)
			from = next;
	}
	return 0;
}

/*
 * t was forked from src after src's memory was restored: keep the mappings
 * it inherited as they are (their shared pages stay shared), empty them of
 * anything that is not shared, and replace the rest of the address space.
 */
int mm_adopt(struct itree *tr, struct itask *t, struct itask *src)
{
	struct range {
		unsigned long start, end;
	} *keep = xmalloc((t->mm->n_vmas + 1) * sizeof(*keep));
	size_t nr = 0;
	unsigned long from = 0;
	bool vdso_kept = false;
	int ret = -1;
	long r;

	if (unregister_rseq(t))
		goto out;
	keep[nr++] = (struct range){ t->gadget, t->gadget + GADGET_SIZE };
	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		Stasis__Vma *v = t->mm->vmas[i];

		if (!vma_kept(t, src, v))
			continue;
		keep[nr++] = (struct range){ v->start, v->end };
		vdso_kept |= v->kind == STASIS__VMA_KIND__VDSO;
	}
	/* vmas are sorted; the gadget goes in its place */
	for (size_t i = 1; i < nr; i++)
		for (size_t j = i; j > 0 && keep[j].start < keep[j - 1].start; j--) {
			struct range x = keep[j];

			keep[j] = keep[j - 1];
			keep[j - 1] = x;
		}
	for (size_t i = 0; i <= nr; i++) {
		unsigned long to = i < nr ? keep[i].start : TASK_SIZE_MAX;

		if (to > from) {
			r = ISYS(t, SYS_munmap, from, to - from);
			if (r) {
				pr_err("task %d: cannot clear %#lx-%#lx: %s", t->pid, from, to,
				       strerror(-r));
				goto out;
			}
		}
		if (i < nr)
			from = keep[i].end;
	}
	if (!vdso_kept && restore_vdso(t))
		goto out;
	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		Stasis__Vma *v = t->mm->vmas[i];

		if (special_kind(v->kind) || v->kind == STASIS__VMA_KIND__AIO)
			continue;
		if (vma_kept(t, src, v) ?
			    zap_not_inherited(t, v) || install_guards(t, v, src_guards(src, v)) :
			    map_one(tr, t, v, (v->flags & MAP_SHARED) && vma_has_pages(t, v)))
			goto out;
	}
	ret = 0;
out:
	free(keep);
	return ret;
}

int mm_finish(struct itask *t)
{
	struct prctl_mm_map map = {};
	Stasis__MmEntry *mm = t->mm;
	unsigned long at;
	long r, exe_fd = -1;

	/* every task's mappings exist by the first call (restore_tree makes
	 * them all first): memfds can take their seals */
	if (memfd_seal_all(t) || aio_restore(t))
		return -1;
	for (size_t i = 0; i < mm->n_vmas; i++) {
		Stasis__Vma *v = mm->vmas[i];

		if (special_kind(v->kind) || !(v->flags & MAP_SHARED) || (v->prot & PROT_WRITE))
			continue;
		r = ISYS(t, SYS_mprotect, v->start, v->end - v->start, v->prot);
		if (r) {
			pr_err("task %d: cannot protect %#llx: %s", t->pid,
			       (unsigned long long)v->start, strerror(-r));
			return -1;
		}
	}
	/* membarrier registrations, each its own command */
	for (unsigned bit = 0; bit < 32; bit++) {
		if (!(mm->membarrier & (1u << bit)))
			continue;
		r = ISYS(t, SYS_membarrier, 1u << bit, 0, 0);
		if (r) {
			pr_err("task %d: cannot register membarrier command %#x: %s", t->pid,
			       1u << bit, strerror(-r));
			return -1;
		}
	}
	/* locked last, with the pages in; fork does not pass locks on, so
	 * inherited mappings are locked here too */
	for (size_t i = 0; i < mm->n_vmas; i++) {
		Stasis__Vma *v = mm->vmas[i];

		if (special_kind(v->kind) || !(v->madv & VMF_LOCKED))
			continue;
		r = ISYS(t, SYS_mlock, v->start, v->end - v->start);
		if (r) {
			pr_err("task %d: cannot lock %#llx-%#llx: %s", t->pid,
			       (unsigned long long)v->start, (unsigned long long)v->end,
			       strerror(-r));
			return -1;
		}
	}
	/* sealed (mseal) after everything else about the mapping is set; the
	 * children are forked by now, each seals its own */
	for (size_t i = 0; i < mm->n_vmas; i++) {
		Stasis__Vma *v = mm->vmas[i];

		if (special_kind(v->kind) || !(v->madv & VMF_SEALED))
			continue;
		r = ISYS(t, SYS_MSEAL, v->start, v->end - v->start, 0);
		if (r) {
			pr_err("task %d: cannot seal %#llx-%#llx: %s", t->pid,
			       (unsigned long long)v->start, (unsigned long long)v->end,
			       strerror(-r));
			return -1;
		}
	}

	if (mm->exe) {
		at = scratch_put(t, 8192, mm->exe, strlen(mm->exe) + 1);
		if (!at)
			return -1;
		if (strlen(mm->exe) > 10 && !strcmp(mm->exe + strlen(mm->exe) - 10, " (deleted)"))
			exe_fd = ghost_exe_open(t, mm->exe); /* remade from the checkpoint */
		else
			exe_fd = ISYS(t, SYS_openat, AT_FDCWD, at, O_RDONLY | O_CLOEXEC);
		if (exe_fd < 0) {
			pr_err("task %d: cannot open its executable %s: %s", t->pid, mm->exe,
			       strerror(-exe_fd));
			return -1;
		}
	}
	map.start_code = mm->start_code;
	map.end_code = mm->end_code;
	map.start_data = mm->start_data;
	map.end_data = mm->end_data;
	map.start_brk = mm->start_brk;
	map.brk = mm->brk;
	map.start_stack = mm->start_stack;
	map.arg_start = mm->arg_start;
	map.arg_end = mm->arg_end;
	map.env_start = mm->env_start;
	map.env_end = mm->env_end;
	map.auxv_size = mm->n_auxv * sizeof(uint64_t);
	map.exe_fd = exe_fd;
	if (map.auxv_size > 4096) {
		pr_err("task %d: auxiliary vector too long", t->pid);
		return -1;
	}
	map.auxv = (void *)scratch_put(t, 4096, mm->auxv, map.auxv_size);
	at = scratch_put(t, 0, &map, sizeof(map));
	if (!at || !map.auxv)
		return -1;
	r = ISYS(t, SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, at, sizeof(map), 0);
	if (exe_fd >= 0)
		ISYS(t, SYS_close, exe_fd);
	if (r) {
		pr_err("task %d: cannot set the mm fields (PR_SET_MM_MAP): %s", t->pid, strerror(-r));
		return -1;
	}
	return 0;
}
