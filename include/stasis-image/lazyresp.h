/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The source side of the response stream of lazy restore
 * (include/stasis/lazy.h has the protocol): records and page frames of
 * libstasis-image, written by the page sources of collect and inject.
 */
#ifndef STASIS_IMAGE_LAZYRESP_H
#define STASIS_IMAGE_LAZYRESP_H

#include <stdint.h>
#include <sys/types.h>

#include "stasis/lazy.h"
#include "stasis-image/image.h"

/* Source side of the response stream: the record announcing nr_pages
 * pages of pid at vaddr (zero: no frames follow, they read as zeros). */
int lazy_resp_head(struct img_writer *w, pid_t pid, uint64_t vaddr, uint32_t nr_pages, int zero);
/* The record and its pages, as page frames of image (a pages-N name);
 * both flush what they wrote, so that the daemon gets it at once. */
int lazy_resp_pages(struct img_writer *w, const char *image, pid_t pid, uint64_t vaddr,
		    const void *data, uint32_t nr_pages);

#endif
