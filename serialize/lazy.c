// SPDX-License-Identifier: GPL-2.0
/* The response stream of a lazy page source (include/stasis-image/lazyresp.h;
 * the protocol is include/stasis/lazy.h), and which runs a lazy restore
 * leaves to the daemon (include/stasis-image/image.h). */
#include <sys/mman.h>

#include "stasis/lazy.h"
#include "stasis/proc.h"
#include "stasis/util.h"
#include "stasis-image/image.h"
#include "stasis-image/lazyresp.h"

/*
 * Private anonymous memory whose pages a lazy restore may fill after the
 * task runs: not mappings whose state the restore sets with their pages in
 * (locked, sealed), nor those the kernel fills or drops itself. Shared by
 * stasis-inject (which runs it leaves to the daemon) and pack --lazy-pages
 * (which page data it need not stream).
 */
bool img_vma_lazy(const Stasis__Vma *v)
{
	if (v->kind != STASIS__VMA_KIND__ANON && v->kind != STASIS__VMA_KIND__HEAP &&
	    v->kind != STASIS__VMA_KIND__STACK)
		return false;
	if ((v->flags & MAP_SHARED) || v->has_packet_ring)
		return false;
	return !(v->madv & (VMF_LOCKED | VMF_SEALED | VMF_DROPPABLE | VMF_HUGETLB | VMF_UFFD));
}

bool img_run_lazy(const Stasis__MmEntry *mm, uint64_t vaddr, uint64_t len)
{
	uint64_t end = vaddr + len;

	for (size_t i = 0; i < mm->n_vmas && vaddr < end; i++) {
		const Stasis__Vma *v = mm->vmas[i];

		if (v->end <= vaddr)
			continue;
		if (v->start > vaddr || !img_vma_lazy(v))
			return false;
		vaddr = v->end;
	}
	return vaddr >= end;
}

int lazy_resp_head(struct img_writer *w, pid_t pid, uint64_t vaddr, uint32_t nr_pages, int zero)
{
	Stasis__LazyPages lp = STASIS__LAZY_PAGES__INIT;

	lp.pid = pid;
	lp.vaddr = vaddr;
	lp.nr_pages = nr_pages;
	lp.has_zero = zero;
	lp.zero = zero;
	if (imgw_record(w, LAZY_PAGES_IMAGE, &lp.base))
		return -1;
	return zero ? imgw_flush(w) : 0;
}

int lazy_resp_pages(struct img_writer *w, const char *image, pid_t pid, uint64_t vaddr,
		    const void *data, uint32_t nr_pages)
{
	if (lazy_resp_head(w, pid, vaddr, nr_pages, 0) ||
	    imgw_pages(w, image, data, (size_t)nr_pages * PAGE_SIZE))
		return -1;
	return imgw_flush(w);
}
