// SPDX-License-Identifier: GPL-2.0
/* The response stream of a lazy page source (include/stasis-image/lazyresp.h;
 * the protocol is include/stasis/lazy.h). */
#include "stasis/lazy.h"
#include "stasis/util.h"
#include "stasis-image/image.h"
#include "stasis-image/lazyresp.h"

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
