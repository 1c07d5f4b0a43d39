// SPDX-License-Identifier: GPL-2.0
/*
 * The gadget page in a task being restored. The new task starts as a copy
 * of stasis-inject, so the first remote calls run through the copy of
 * stasis_gadget below; they map the real gadget where no restored mapping
 * goes, and everything else runs from there until its last call unmaps it.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "inject.h"
#include "stasis/log.h"
#include "stasis/proc.h"
#include "stasis/util.h"

#define GADGET_SIZE ((1 + GADGET_SCRATCH_PAGES) * PAGE_SIZE)
#define TASK_SIZE_MAX 0x7ffffffff000UL

extern char stasis_gadget[];
asm(".pushsection .text\n"
    ".globl stasis_gadget\n"
    "stasis_gadget:\n"
    "	syscall\n"
    "	int3\n"
    ".popsection\n");

static const unsigned char gadget_code[] = { 0x0f, 0x05, 0xcc }; /* syscall; int3 */

long icall(struct itask *t, long nr, unsigned long a1, unsigned long a2, unsigned long a3,
	   unsigned long a4, unsigned long a5, unsigned long a6)
{
	return rtask_syscall(&t->rt, NULL, nr, a1, a2, a3, a4, a5, a6);
}

unsigned long scratch_put(struct itask *t, size_t off, const void *data, size_t len)
{
	if (off + len > GADGET_SCRATCH_PAGES * PAGE_SIZE) {
		pr_err("internal error: %zu bytes do not fit the scratch area", off + len);
		return 0;
	}
	if (rmem_write(&t->rt, t->scratch + off, data, len))
		return 0;
	return t->scratch + off;
}

struct range {
	unsigned long start, end;
};

static int range_cmp(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Lowest gap above 1 MiB free now and in the restored layout of every
 * task (children are cloned from the root and inherit its gadget). */
static unsigned long find_gadget_place(struct itree *tr, struct itask *t)
{
	struct proc_vma *now;
	int nr_now = proc_read_maps(t->hpid, &now);
	struct range *r;
	size_t nr = 0, total = 0;
	unsigned long cand = 1UL << 20;

	if (nr_now < 0)
		return 0;
	for (size_t i = 0; i < tr->nr; i++)
		total += task_alive(&tr->tasks[i]) ? tr->tasks[i].mm->n_vmas : 0;
	r = xmalloc((nr_now + total) * sizeof(*r));
	for (int i = 0; i < nr_now; i++)
		r[nr++] = (struct range){ now[i].start, now[i].end };
	for (size_t k = 0; k < tr->nr; k++) {
		Stasis__MmEntry *mm = tr->tasks[k].mm;

		for (size_t i = 0; task_alive(&tr->tasks[k]) && i < mm->n_vmas; i++)
			r[nr++] = (struct range){ mm->vmas[i]->start, mm->vmas[i]->end };
	}
	free(now);
	qsort(r, nr, sizeof(*r), range_cmp);
	for (size_t i = 0; i < nr; i++) {
		/* a guard page on each side keeps the gadget from merging */
		if (cand + GADGET_SIZE + PAGE_SIZE <= r[i].start)
			break;
		if (r[i].end + PAGE_SIZE > cand)
			cand = r[i].end + PAGE_SIZE;
	}
	free(r);
	return cand + GADGET_SIZE < TASK_SIZE_MAX ? cand : 0;
}

int parasite_place(struct itree *tr, struct itask *t)
{
	unsigned long at = find_gadget_place(tr, t);
	long r;

	if (!at) {
		pr_err("task %d: no room for the restore gadget", t->pid);
		return -1;
	}
	t->rt.syscall_ip = (unsigned long)stasis_gadget;
	r = ISYS(t, SYS_mmap, at, GADGET_SIZE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if ((unsigned long)r != at) {
		pr_err("task %d: cannot map the restore gadget at %#lx: %s", t->pid, at,
		       r < 0 ? strerror(-r) : "placed elsewhere");
		return -1;
	}
	if (rmem_write(&t->rt, at, gadget_code, sizeof(gadget_code)))
		return -1;
	r = ISYS(t, SYS_mprotect, at, PAGE_SIZE, PROT_READ | PROT_EXEC);
	if (r) {
		pr_err("task %d: cannot protect the restore gadget: %s", t->pid, strerror(-r));
		return -1;
	}
	t->gadget = at;
	t->scratch = at + PAGE_SIZE;
	t->rt.syscall_ip = at;
	pr_debug("task %d: gadget at %#lx", t->pid, at);
	return 0;
}

int parasite_remove(struct itask *t)
{
	long r = ISYS(t, SYS_munmap, t->gadget, GADGET_SIZE);

	if (r) {
		pr_err("task %d: cannot unmap the restore gadget: %s", t->pid, strerror(-r));
		return -1;
	}
	t->gadget = t->scratch = 0;
	return 0;
}
