// SPDX-License-Identifier: GPL-2.0
/*
 * mm-PID and pagemap-PID/pages-N: mappings, mm fields and the pages that are
 * present. Pages are found through /proc/PID/pagemap, never by touching
 * them; zero pages and file pages identical to the file are not copied.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "collect.h"
#include "memfd.h"
#include "track.h"
#include "stasis/fault.h"
#include "stasis/log.h"
#include "stasis/proc.h"
#include "stasis/uffd.h" /* PAGEMAP_SCAN */
#include "stasis/util.h"

#define PME_PRESENT (1ull << 63)
#define PME_SWAP (1ull << 62)
#define PME_FILE (1ull << 61)
#define PME_GUARD (1ull << 58) /* a guard region marker (6.14+): reads fail */
#define PME_PFN_MASK ((1ull << 55) - 1)

/* MEMBARRIER_CMD_GET_REGISTRATIONS (6.3+), newer than the headers here */
#define MEMBARRIER_GET_REGISTRATIONS (1 << 9)

#define PAGEMAP_BATCH 8192
#define COPY_CHUNK (1u << 20)

static uint64_t zero_pfn = ~0ull;

/* The PFN of the shared zero page, so pages mapped to it are skipped. */
static void find_zero_pfn(void)
{
	volatile char *p = mmap(NULL, PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t pme;
	int fd;

	if (p == MAP_FAILED)
		return;
	(void)*p;
	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (pread(fd, &pme, 8, (unsigned long)p / PAGE_SIZE * 8) == 8 &&
		    (pme & PME_PRESENT) && (pme & PME_PFN_MASK))
			zero_pfn = pme & PME_PFN_MASK;
		close(fd);
	}
	munmap((void *)p, PAGE_SIZE);
}

/* Whether v is a SysV shared memory attach ("/SYSV<key> (deleted)"). */
static bool sysv_key(const struct proc_vma *v, uint32_t *key)
{
	unsigned int k;
	int n = 0;

	if (!v->shared || sscanf(v->path, "/SYSV%8x (deleted)%n", &k, &n) != 1 ||
	    n != (int)strlen(v->path))
		return false;
	if (key)
		*key = k;
	return true;
}

/*
 * A SysV mapping: the whole of an attach, in pieces (mprotect splits it)
 * of consecutive offsets from the first; noted for ipcns.c to check. The
 * first piece (pgoff 0) stands for the attach.
 */
static int sysv_collect_vma(struct ctask *ct, const struct proc_vma *vmas, int nr, int i)
{
	const struct proc_vma *v = &vmas[i];
	uint32_t key = 0;
	int j;

	sysv_key(v, &key);
	if (v->vmflags & VMF_HUGETLB) {
		pr_err(
		    "task %d: SysV segment %lu is attached at %#lx with huge pages (SHM_HUGETLB): "
		    "not supported",
		    ct->pid, v->ino, v->start);
		return -1;
	}
	if (v->pgoff) {
		const struct proc_vma *p = i ? &vmas[i - 1] : NULL;

		if (p && p->ino == v->ino && sysv_key(p, NULL) && p->end == v->start &&
		    p->pgoff + (p->end - p->start) == v->pgoff)
			return 0;
		pr_err(
		    "task %d: SysV segment %lu is attached at %#lx only in part (the rest of the "
		    "attach unmapped): not supported",
		    ct->pid, v->ino, v->start - v->pgoff);
		return -1;
	}
	for (j = i + 1;
	     j < nr && vmas[j].ino == v->ino && sysv_key(&vmas[j], NULL) &&
	     vmas[j].start == vmas[j - 1].end && vmas[j].pgoff == vmas[j].start - v->start;
	     j++)
		;
	return ipcns_note_attach(ct->pid, v->start, v->ino, key, vmas[j - 1].end - v->start);
}

static Stasis__VmaKind vma_kind(const struct proc_vma *v)
{
	if (!strcmp(v->path, "[heap]"))
		return STASIS__VMA_KIND__HEAP;
	if (!strcmp(v->path, "[stack]"))
		return STASIS__VMA_KIND__STACK;
	if (!strcmp(v->path, "[vdso]"))
		return STASIS__VMA_KIND__VDSO;
	if (!strcmp(v->path, "[vvar]"))
		return STASIS__VMA_KIND__VVAR;
	if (!strcmp(v->path, "[vvar_vclock]"))
		return STASIS__VMA_KIND__VVAR_VCLOCK;
	if (!strcmp(v->path, "[vsyscall]"))
		return STASIS__VMA_KIND__VSYSCALL;
	if (v->shared && !strcmp(v->path, "/[aio] (deleted)"))
		return STASIS__VMA_KIND__AIO;
	/* shared anonymous memory; mapped privately too, through map_files */
	if (!strcmp(v->path, "/dev/zero (deleted)") || !strncmp(v->path, "[anon_shmem:", 12))
		return STASIS__VMA_KIND__SHMEM;
	/* a SysV segment attached by the task: restored from its IPC
	 * namespace (ipcns.c) */
	if (sysv_key(v, NULL))
		return STASIS__VMA_KIND__SYSV_SHM;
	/* a memfd, shared or private: restored from its object (memfd.c) */
	if (memfd_path(v->path))
		return STASIS__VMA_KIND__SHMEM;
	if (v->path[0] == '/')
		return STASIS__VMA_KIND__FILE;
	return STASIS__VMA_KIND__ANON;
}

static bool page_wanted(Stasis__VmaKind kind, bool shared, uint64_t pme)
{
	if (!(pme & (PME_PRESENT | PME_SWAP)) || (pme & PME_GUARD))
		return false;
	if ((pme & PME_PRESENT) && zero_pfn != ~0ull && (pme & PME_PFN_MASK) == zero_pfn)
		return false;
	switch (kind) {
	case STASIS__VMA_KIND__FILE:
		/* the file holds shared pages and unmodified private ones */
		return !shared && ((pme & PME_SWAP) || !(pme & PME_FILE));
	case STASIS__VMA_KIND__ANON:
	case STASIS__VMA_KIND__HEAP:
	case STASIS__VMA_KIND__STACK:
		return true;
	default:
		return false;
	}
}

static void add_run(struct ctask *ct, unsigned long addr, unsigned long nr, bool in_parent,
		    bool in_prev, bool lazy)
{
	struct page_run *last = ct->nr_runs ? &ct->runs[ct->nr_runs - 1] : NULL;

	if (last && last->vaddr + last->nr_pages * PAGE_SIZE == addr &&
	    last->in_parent == in_parent && last->in_prev == in_prev && last->lazy == lazy &&
	    !last->shm && last->nr_pages + nr < (1u << 30)) {
		last->nr_pages += nr;
		return;
	}
	if ((ct->nr_runs & (ct->nr_runs - 1)) == 0)
		ct->runs = xrealloc(ct->runs, (ct->nr_runs ? ct->nr_runs * 2 : 1) * sizeof(*ct->runs));
	ct->runs[ct->nr_runs++] = (struct page_run){
		.vaddr = addr, .nr_pages = nr, .in_parent = in_parent, .in_prev = in_prev,
		.lazy = lazy
	};
}

/*
 * Shared memory objects (by inode) and the ranges of each already dumped,
 * by any task: every range of an object is dumped once, through the first
 * mapping that covers it.
 */
struct shm_dumped {
	uint64_t ino;
	unsigned long (*ranges)[2]; /* object offsets, [start, end) */
	size_t nr;
};
static struct shm_dumped *shm_objs;
static size_t nr_shm_objs;

static struct shm_dumped *shm_obj(uint64_t ino)
{
	for (size_t i = 0; i < nr_shm_objs; i++)
		if (shm_objs[i].ino == ino)
			return &shm_objs[i];
	shm_objs = xrealloc(shm_objs, (nr_shm_objs + 1) * sizeof(*shm_objs));
	shm_objs[nr_shm_objs] = (struct shm_dumped){ ino, NULL, 0 };
	return &shm_objs[nr_shm_objs++];
}

/* The first part of [*from, end) not dumped yet, in [*from, *to); false
 * when none is left. */
static bool shm_next_undumped(const struct shm_dumped *o, unsigned long *from, unsigned long end,
			      unsigned long *to)
{
	bool moved = true;

	while (moved && *from < end) {
		moved = false;
		for (size_t i = 0; i < o->nr; i++)
			if (o->ranges[i][0] <= *from && *from < o->ranges[i][1]) {
				*from = o->ranges[i][1];
				moved = true;
			}
	}
	if (*from >= end)
		return false;
	*to = end;
	for (size_t i = 0; i < o->nr; i++)
		if (o->ranges[i][0] > *from && o->ranges[i][0] < *to)
			*to = o->ranges[i][0];
	return true;
}

/* One more page run of the object behind v, from object offset off. */
static void add_shm_pages(struct ctask *ct, const struct proc_vma *v, unsigned long off,
			  unsigned long nr)
{
	unsigned long addr = v->start + (off - v->pgoff);
	struct page_run *last = ct->nr_runs ? &ct->runs[ct->nr_runs - 1] : NULL;

	if (last && last->shm && last->vma_start == v->start &&
	    last->vaddr + last->nr_pages * PAGE_SIZE == addr && last->nr_pages + nr < (1u << 30)) {
		last->nr_pages += nr;
		return;
	}
	if ((ct->nr_runs & (ct->nr_runs - 1)) == 0)
		ct->runs = xrealloc(ct->runs, (ct->nr_runs ? ct->nr_runs * 2 : 1) * sizeof(*ct->runs));
	ct->runs[ct->nr_runs++] = (struct page_run){ .vaddr = addr,
						      .nr_pages = nr,
						      .shm = true,
						      .shm_off = off,
						      .vma_start = v->start,
						      .vma_end = v->end };
}

/*
 * The pages of a shared memory object seen through v that no mapping
 * dumped before: those allocated in the object, as SEEK_DATA sees them
 * through map_files, whether or not any task has them in its page tables.
 * Its size goes in pv.
 */
static int scan_shmem(struct ctask *ct, const struct proc_vma *v, Stasis__Vma *pv)
{
	struct shm_dumped *o = shm_obj(v->ino);
	unsigned long from = v->pgoff, end = v->pgoff + (v->end - v->start), to;
	char path[128];
	struct stat sb;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%lx-%lx", ct->pid, v->start, v->end);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb)) {
		pr_perror("cannot open shared memory %s", path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	pv->has_file_size = true;
	pv->file_size = sb.st_size;
	while (shm_next_undumped(o, &from, end, &to)) {
		unsigned long off = from;

		while (off < to) {
			off_t data = lseek(fd, off, SEEK_DATA), hole;

			if (data < 0 || (unsigned long)data >= to)
				break;
			hole = lseek(fd, data, SEEK_HOLE);
			if (hole < 0 || (unsigned long)hole > to)
				hole = to;
			data &= ~(off_t)(PAGE_SIZE - 1);
			hole = PAGE_ALIGN(hole);
			if ((unsigned long)hole > to)
				hole = to;
			add_shm_pages(ct, v, data, (hole - data) / PAGE_SIZE);
			off = hole;
		}
		if ((o->nr & (o->nr - 1)) == 0)
			o->ranges = xrealloc(o->ranges, (o->nr ? o->nr * 2 : 1) * sizeof(*o->ranges));
		o->ranges[o->nr][0] = from;
		o->ranges[o->nr][1] = to;
		o->nr++;
		from = to;
	}
	close(fd);
	return 0;
}

/* One more guard page of pv at addr, merged with the run before it. */
static void add_guard(Stasis__Vma *pv, unsigned long addr)
{
	Stasis__PageRange *last = pv->n_guards ? pv->guards[pv->n_guards - 1] : NULL;

	if (last && last->start + last->nr_pages * PAGE_SIZE == addr) {
		last->nr_pages++;
		return;
	}
	if ((pv->n_guards & (pv->n_guards - 1)) == 0)
		pv->guards = xrealloc(pv->guards,
				      (pv->n_guards ? pv->n_guards * 2 : 1) * sizeof(*pv->guards));
	last = xmalloc(sizeof(*last));
	stasis__page_range__init(last);
	last->start = addr;
	last->nr_pages = 1;
	pv->guards[pv->n_guards++] = last;
}

/*
 * The pages of [start, end) of v worth copying, and its guard pages (in pv),
 * one pagemap entry at a time. With parent_pm (the parent's pagemap, for a
 * mapping the restored child will inherit), a page that is the very same
 * physical page in the parent is only marked in_parent.
 */
static int scan_entries(struct ctask *ct, int pm_fd, int parent_pm, const struct proc_vma *v,
			Stasis__VmaKind kind, Stasis__Vma *pv, unsigned long start,
			unsigned long end, bool lazy)
{
	static uint64_t pme[PAGEMAP_BATCH], ppme[PAGEMAP_BATCH];

	for (unsigned long addr = start; addr < end;) {
		size_t n = (end - addr) / PAGE_SIZE;

		if (n > PAGEMAP_BATCH)
			n = PAGEMAP_BATCH;
		if (pread(pm_fd, pme, n * 8, addr / PAGE_SIZE * 8) != (ssize_t)(n * 8) ||
		    (parent_pm >= 0 &&
		     pread(parent_pm, ppme, n * 8, addr / PAGE_SIZE * 8) != (ssize_t)(n * 8))) {
			pr_perror("cannot read the pagemap of task %d at %#lx", ct->pid, addr);
			return -1;
		}
		for (size_t i = 0; i < n; i++, addr += PAGE_SIZE) {
			if (pme[i] & PME_GUARD)
				add_guard(pv, addr);
			/* droppable memory may be emptied at any time: it is */
			if ((v->vmflags & VMF_DROPPABLE) || track_is_marker(pme[i]) ||
			    !page_wanted(kind, v->shared, pme[i]))
				continue;
			bool cow = parent_pm >= 0 && (pme[i] & PME_PRESENT) &&
				   (ppme[i] & PME_PRESENT) && (pme[i] & PME_PFN_MASK) &&
				   (pme[i] & PME_PFN_MASK) == (ppme[i] & PME_PFN_MASK);

			/* unchanged since the previous link: its data is there */
			add_run(ct, addr, 1, cow, !cow && track_unchanged(ct, addr), lazy);
		}
	}
	return 0;
}

/* PAGEMAP_SCAN (6.7+) answered for this kernel: 1 yes, 0 not yet asked,
 * -1 no (the entries are read one by one). */
static int pagemap_scan_works;

/*
 * The pages of one mapping worth copying, and its guard pages (in pv).
 * PAGEMAP_SCAN reports the mapping as runs of present or swapped pages,
 * so the frozen time does not grow with a page loop over every entry: a
 * run of present pages is taken whole; what needs an entry's frame (a
 * swapped page, a guard or a tracker's marker, all swap entries; a page
 * compared with the parent's) is read from the pagemap as before.
 */
static int scan_pages(struct ctask *ct, int pm_fd, int parent_pm, const struct proc_vma *v,
		      Stasis__VmaKind kind, Stasis__Vma *pv)
{
	static struct page_region vec[512];
	/* private anonymous memory is what a lazy restore fills on demand
	 * (userfaultfd); the pages stay in the frozen task until served */
	bool lazy = opts.lazy_pages && !v->shared &&
		    (kind == STASIS__VMA_KIND__ANON || kind == STASIS__VMA_KIND__HEAP ||
		     kind == STASIS__VMA_KIND__STACK);
	bool file = kind == STASIS__VMA_KIND__FILE;
	bool per_page = track_follows(ct);

	/* a lazy child faults its own copy in: nothing is inherited */
	if (lazy)
		parent_pm = -1;
	if (pagemap_scan_works < 0 || parent_pm >= 0 || (v->vmflags & VMF_DROPPABLE) ||
	    !page_wanted(kind, v->shared, PME_PRESENT | PME_SWAP))
		return scan_entries(ct, pm_fd, parent_pm, v, kind, pv, v->start, v->end, lazy);

	for (unsigned long start = v->start; start < v->end;) {
		struct pm_scan_arg a = {
			.size = sizeof(a),
			.start = start,
			.end = v->end,
			.vec = (unsigned long)vec,
			.vec_len = sizeof(vec) / sizeof(vec[0]),
			.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
			/* PAGE_IS_FILE costs a page lookup: asked only where
			 * it decides */
			.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_PFNZERO |
				       (file ? PAGE_IS_FILE : 0),
		};
		long n = ioctl(pm_fd, PAGEMAP_SCAN, &a);

		if (n < 0 && pagemap_scan_works == 0 && (errno == ENOTTY || errno == EINVAL)) {
			pagemap_scan_works = -1;
			return scan_entries(ct, pm_fd, parent_pm, v, kind, pv, start, v->end, lazy);
		}
		if (n < 0) {
			pr_perror("task %d: PAGEMAP_SCAN of %#lx-%#lx failed", ct->pid, start, v->end);
			return -1;
		}
		pagemap_scan_works = 1;
		for (long i = 0; i < n; i++) {
			const struct page_region *r = &vec[i];

			if ((r->categories & PAGE_IS_SWAPPED) || per_page) {
				if (scan_entries(ct, pm_fd, -1, v, kind, pv, r->start, r->end, lazy))
					return -1;
				continue;
			}
			/* the shared zero page, and a private file page the
			 * file still holds, are not copied */
			if ((r->categories & PAGE_IS_PFNZERO) ||
			    (file && (v->shared || (r->categories & PAGE_IS_FILE))))
				continue;
			add_run(ct, r->start, (r->end - r->start) / PAGE_SIZE, false, false, lazy);
		}
		if (a.walk_end <= start)
			break;
		start = a.walk_end;
	}
	return 0;
}

/*
 * The pages of a private hugetlb mapping worth copying, whole huge pages at
 * a time: pagemap tells each 4 KiB piece, but a huge page is present or
 * absent as one, and its restore fills it whole. The pages of the object a
 * shared mapping shows are the object's (scan_shmem, memfd.c); so are
 * those a private mapping of a memfd only reads (not anonymous).
 */
static int scan_hugetlb(struct ctask *ct, int pm_fd, const struct proc_vma *v)
{
	unsigned long hps = v->page_size;

	if (v->shared)
		return 0;
	for (unsigned long addr = v->start; addr < v->end; addr += hps) {
		uint64_t pme;

		if (pread(pm_fd, &pme, 8, addr / PAGE_SIZE * 8) != 8) {
			pr_perror("cannot read the pagemap of task %d at %#lx", ct->pid, addr);
			return -1;
		}
		if ((pme & (PME_PRESENT | PME_SWAP)) && !(pme & PME_FILE))
			add_run(ct, addr, hps / PAGE_SIZE, false, false, false);
	}
	return 0;
}

/*
 * A hugetlb mapping: private or shared anonymous memory (MAP_HUGETLB) or a
 * memfd made with MFD_HUGETLB; its kind in *kind. Files of a mounted
 * hugetlbfs and SysV segments of huge pages are not carried.
 */
static int hugetlb_vma(const struct ctask *ct, const struct proc_vma *v, Stasis__VmaKind *kind)
{
	unsigned long hps = v->page_size;

	if (hps <= PAGE_SIZE || (hps & (hps - 1)) || (v->start | v->end) & (hps - 1)) {
		pr_err("task %d: hugetlb mapping %lx-%lx has a page size of %lu bytes", ct->pid,
		       v->start, v->end, hps);
		return -1;
	}
	if (!strcmp(v->path, "/anon_hugepage (deleted)")) {
		*kind = v->shared ? STASIS__VMA_KIND__SHMEM : STASIS__VMA_KIND__ANON;
		return 0;
	}
	if (memfd_path(v->path)) {
		*kind = STASIS__VMA_KIND__SHMEM;
		return 0;
	}
	pr_err("task %d: hugetlb mapping %lx-%lx of %s is not supported yet (only anonymous "
	       "memory and memfds)",
	       ct->pid, v->start, v->end, v->path[0] ? v->path : "?");
	return -1;
}

/* A mapping of a shared object: its own pages besides the object's (the
 * copied-on-write ones of a private mapping). */
static int scan_shmem_private(struct ctask *ct, int pm_fd, const struct proc_vma *v,
			      Stasis__Vma *pv)
{
	if (pv->has_hugetlb_page_size)
		return scan_hugetlb(ct, pm_fd, v);
	return scan_pages(ct, pm_fd, -1, v, v->shared ? STASIS__VMA_KIND__SHMEM : STASIS__VMA_KIND__FILE,
			  pv);
}

static const Stasis__Vma *parent_vma(const struct ctask *ct, const Stasis__Vma *v)
{
	if (!ct->parent)
		return NULL;
	for (size_t i = 0; i < ct->parent->nr_vmas; i++)
		if (img_vma_inherited(v, ct->parent->vmas[i]))
			return ct->parent->vmas[i];
	return NULL;
}

static int read_auxv(pid_t pid, Stasis__MmEntry *mm)
{
	char path[64];
	static uint64_t buf[512];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/auxv", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("cannot open %s", path);
		return -1;
	}
	n = read_full(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0) {
		pr_perror("cannot read %s", path);
		return -1;
	}
	mm->n_auxv = n / 8;
	mm->auxv = xmalloc(n + 8);
	memcpy(mm->auxv, buf, n);
	return 0;
}

int mm_collect(struct ctask *ct, struct img_writer *w)
{
	Stasis__MmEntry mm = STASIS__MM_ENTRY__INIT;
	Stasis__PagemapHead head = STASIS__PAGEMAP_HEAD__INIT;
	struct proc_vma *vmas;
	struct proc_stat st;
	char name[32], path[64], exe[4096];
	int nr, pm_fd, parent_pm = -1;
	long brk, membarrier;
	ssize_t n;

	if (zero_pfn == ~0ull)
		find_zero_pfn();
	if (proc_read_stat(ct->pid, 0, &st))
		return -1;
	brk = parasite_call(ct, 0, SYS_brk, 0, 0, 0, 0);
	mm.start_code = st.start_code;
	mm.end_code = st.end_code;
	mm.start_data = st.start_data;
	mm.end_data = st.end_data;
	mm.start_brk = st.start_brk;
	mm.brk = brk;
	mm.start_stack = st.start_stack;
	mm.arg_start = st.arg_start;
	mm.arg_end = st.arg_end;
	mm.env_start = st.env_start;
	mm.env_end = st.env_end;
	if (read_auxv(ct->pid, &mm))
		return -1;
	/* registrations live in the mm; older kernels cannot tell them */
	membarrier = parasite_call(ct, 0, SYS_membarrier, MEMBARRIER_GET_REGISTRATIONS, 0, 0, 0);
	mm.has_membarrier = membarrier > 0;
	mm.membarrier = mm.has_membarrier ? membarrier : 0;
	snprintf(path, sizeof(path), "/proc/%d/exe", ct->pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = 0;
		mm.exe = xstrdup(exe);
	}

	nr = proc_read_vmas(ct->pid, &vmas);
	if (nr < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/pagemap", ct->pid);
	pm_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (pm_fd < 0) {
		pr_perror("cannot open %s", path);
		return -1;
	}
	if (ct->parent) {
		snprintf(path, sizeof(path), "/proc/%d/pagemap", ct->parent->pid);
		parent_pm = open(path, O_RDONLY | O_CLOEXEC);
		if (parent_pm < 0) {
			pr_perror("cannot open %s", path);
			close(pm_fd);
			return -1;
		}
	}
	mm.vmas = xmalloc(nr * sizeof(*mm.vmas));
	for (int i = 0; i < nr; i++) {
		struct proc_vma *v = &vmas[i];
		Stasis__Vma *pv = xmalloc(sizeof(*pv));
		Stasis__VmaKind kind = vma_kind(v);

		if (v->start == ct->scratch) {
			free(pv);
			continue;
		}
		stasis__vma__init(pv);
		if ((v->vmflags & VMF_HUGETLB) && kind != STASIS__VMA_KIND__SYSV_SHM &&
		    hugetlb_vma(ct, v, &kind)) {
			free(pv);
			goto err;
		}
		if (v->vmflags & VMF_HUGETLB) {
			pv->has_hugetlb_page_size = true;
			pv->hugetlb_page_size = v->page_size;
		}
		pv->start = v->start;
		pv->end = v->end;
		pv->pgoff = kind == STASIS__VMA_KIND__FILE ? v->pgoff : 0;
		pv->prot = v->prot;
		pv->kind = kind;
		pv->flags = v->shared ? MAP_SHARED : MAP_PRIVATE;
		if (kind != STASIS__VMA_KIND__FILE)
			pv->flags |= MAP_ANONYMOUS;
		if (v->vmflags & VMF_GROWSDOWN)
			pv->flags |= MAP_GROWSDOWN;
		if (v->vmflags & VMF_NORESERVE)
			pv->flags |= MAP_NORESERVE;
		pv->has_madv = true;
		pv->madv = v->vmflags & ~VMF_UFFD; /* the tracker's, not the task's */
		if (v->path[0])
			pv->path = xstrdup(v->path);
		if (kind == STASIS__VMA_KIND__FILE) {
			char tpath[PATH_MAX + 32];
			struct stat sb;
			size_t plen = strlen(v->path);

			if (plen > 10 && !strcmp(v->path + plen - 10, " (deleted)")) {
				if (ghost_collect_vma(ct, v, &sb))
					goto err;
			} else if (stat(mntns_path(ct->pid, v->path, tpath, sizeof(tpath)), &sb) ||
				   sb.st_ino != v->ino) {
				pr_err("task %d: mapped file %s at %lx is not reachable by its path",
				       ct->pid, v->path, v->start);
				goto err;
			}
			pv->has_dev = pv->has_ino = pv->has_file_size = true;
			pv->dev = sb.st_dev;
			pv->ino = sb.st_ino;
			pv->file_size = sb.st_size;
		} else if (kind == STASIS__VMA_KIND__ANON && packet_ring_vma(v)) {
			if (packet_collect_vma(ct, v, pv))
				goto err;
			mm.vmas[mm.n_vmas++] = pv;
			continue; /* the ring's frames are not carried */
		} else if (kind == STASIS__VMA_KIND__ANON && v->path[0] && v->path[0] != '[' &&
			   !pv->has_hugetlb_page_size) {
			pr_err("task %d: mapping %lx-%lx (%s) is not supported yet", ct->pid, v->start,
			       v->end, v->path);
			goto err;
		}
		mm.vmas[mm.n_vmas++] = pv;
		if (kind == STASIS__VMA_KIND__SYSV_SHM) {
			/* no pages: the segment's are in its IPC namespace's */
			pv->flags = MAP_SHARED;
			pv->pgoff = v->pgoff;
			pv->has_shmid = true;
			pv->shmid = v->ino;
			if (sysv_collect_vma(ct, vmas, nr, i))
				goto err;
			continue;
		}
		if (kind == STASIS__VMA_KIND__AIO) {
			if (aio_collect_vma(ct, v, &mm))
				goto err;
			continue;
		}
		if (kind == STASIS__VMA_KIND__VDSO || kind == STASIS__VMA_KIND__VVAR ||
		    kind == STASIS__VMA_KIND__VVAR_VCLOCK || kind == STASIS__VMA_KIND__VSYSCALL)
			continue; /* the kernel provides these */
		if (kind == STASIS__VMA_KIND__SHMEM) {
			pv->has_shmid = true;
			pv->shmid = v->ino;
			pv->pgoff = v->pgoff;
			if (memfd_path(v->path)) {
				/* the object holds the contents; a private mapping
				 * has its copied-on-write pages besides */
				pv->flags &= ~MAP_ANONYMOUS;
				if (memfd_collect_vma(ct, v) || scan_shmem_private(ct, pm_fd, v, pv))
					goto err;
				continue;
			}
			/* a private mapping has its copied-on-write pages besides */
			if (scan_shmem(ct, v, pv) || scan_shmem_private(ct, pm_fd, v, pv))
				goto err;
			continue;
		}
		if (pv->has_hugetlb_page_size) {
			if (scan_hugetlb(ct, pm_fd, v))
				goto err;
			continue;
		}
		if (scan_pages(ct, pm_fd, parent_vma(ct, pv) ? parent_pm : -1, v, kind, pv))
			goto err;
	}
	close(pm_fd);
	if (parent_pm >= 0)
		close(parent_pm);
	free(ct->kvmas);
	ct->kvmas = vmas;
	ct->nr_kvmas = nr;
	ct->vmas = mm.vmas;
	ct->nr_vmas = mm.n_vmas;

	snprintf(name, sizeof(name), "mm-%d", pidns_vpid(ct->pid));
	if (imgw_record(w, name, &mm.base))
		return -1;
	snprintf(name, sizeof(name), "pagemap-%d", pidns_vpid(ct->pid));
	head.pages_id = ct->pages_id;
	if (imgw_record(w, name, &head.base))
		return -1;
	for (size_t i = 0; i < ct->nr_runs; i++) {
		Stasis__PagemapEntry pe = STASIS__PAGEMAP_ENTRY__INIT;

		pe.vaddr = ct->runs[i].vaddr;
		pe.nr_pages = ct->runs[i].nr_pages;
		pe.has_in_parent = pe.in_parent = ct->runs[i].in_parent;
		pe.has_shm_off = ct->runs[i].shm;
		pe.shm_off = ct->runs[i].shm_off;
		pe.has_in_prev = pe.in_prev = ct->runs[i].in_prev;
		pe.has_lazy = pe.lazy = ct->runs[i].lazy;
		if (imgw_record(w, name, &pe.base))
			return -1;
	}
	return 0;
err:
	close(pm_fd);
	if (parent_pm >= 0)
		close(parent_pm);
	free(vmas);
	return -1;
}

/* len bytes of a shared memory object at off; what lies past its end
 * (it shrank) reads as zeros. */
static int shm_pread(int fd, char *buf, size_t len, unsigned long off)
{
	while (len) {
		ssize_t n = pread(fd, buf, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			memset(buf, 0, len);
			return 0;
		}
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

/*
 * Page data is read from the task into a ring of buffers. When the reader
 * of the stream copies (--reader-copies), a buffer goes into the pipe by
 * reference (vmsplice) and is read into again once the reader has taken
 * it: the pages are copied twice (task to buffer, pipe to reader), not
 * three times, and the pipe's lock is never held for a copy on this side.
 * The ring outlasts a full pipe (4 MiB, pipe_grow), so waits are rare.
 */
#define COPY_RING 8

struct copy_ring {
	char *buf[COPY_RING];
	uint64_t end[COPY_RING]; /* stream bytes written once it was sent */
	unsigned next;
};

static char *ring_take(struct copy_ring *r, const struct img_writer *w)
{
	unsigned i = r->next;

	if (!r->buf[i])
		r->buf[i] = xmalloc(COPY_CHUNK);
	if (r->end[i] && imgw_wait_taken(w, r->end[i])) {
		pr_perror("cannot write image stream");
		return NULL;
	}
	return r->buf[i];
}

static int ring_send(struct copy_ring *r, struct img_writer *w, const char *name, size_t len)
{
	unsigned i = r->next;
	bool by_ref = imgw_reader_copies_set(w);

	if (by_ref ? imgw_pages_stable(w, name, r->buf[i], len) : imgw_pages(w, name, r->buf[i], len))
		return -1;
	r->end[i] = by_ref ? imgw_written(w) : 0;
	r->next = (i + 1) % COPY_RING;
	return 0;
}

int mm_write_pages(struct ctask *ct, struct img_writer *w)
{
	static struct copy_ring ring;
	char name[32];
	bool first = true;
	uint64_t img_off = 0;

	snprintf(name, sizeof(name), "pages-%u", ct->pages_id);
	for (size_t i = 0; i < ct->nr_runs; i++) {
		struct page_run *run = &ct->runs[i];
		unsigned long addr = run->vaddr, off = run->shm_off;
		size_t left = run->in_parent || run->in_prev || run->lazy ? 0 :
			      run->nr_pages * PAGE_SIZE;
		int fd = -1;

		if (run->shm) {
			char path[128];

			snprintf(path, sizeof(path), "/proc/%d/map_files/%lx-%lx", ct->pid,
				 run->vma_start, run->vma_end);
			fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0) {
				pr_perror("cannot open shared memory %s", path);
				return -1;
			}
		}
		while (left) {
			/* chunks end where page frames end: none is gathered by a copy */
			size_t chunk = COPY_CHUNK - img_off % COPY_CHUNK;
			char *buf = ring_take(&ring, w);

			if (chunk > left)
				chunk = left;
			if (!buf || (fd >= 0 ? shm_pread(fd, buf, chunk, off) :
					       rmem_read(&ct->threads[0], addr, buf, chunk))) {
				if (buf && fd >= 0)
					pr_perror("cannot read shared memory of task %d at %#lx",
						  ct->pid, addr);
				if (fd >= 0)
					close(fd);
				return -1;
			}
			if (ring_send(&ring, w, name, chunk)) {
				if (fd >= 0)
					close(fd);
				return -1;
			}
			/* part of the pages are on their way */
			if (first && fault_hit("collect-pages")) {
				if (fd >= 0)
					close(fd);
				return -1;
			}
			first = false;
			addr += chunk;
			off += chunk;
			img_off += chunk;
			left -= chunk;
		}
		if (fd >= 0)
			close(fd);
	}
	return 0;
}
