/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Background snapshot (bgsnap.c; docs/memory.md): for a dump that leaves the
 * tree running, the private anonymous memory is write-protected with a
 * synchronous userfaultfd while the tree is frozen, the tree runs again and
 * the pages are copied out meanwhile; a write to a page not copied yet waits
 * until that page is copied.
 *
 *	bgsnap_wanted	the options allow it (-R or --pre-dump, no tracker)
 *	bgsnap_prepare	before the tasks are collected: start the handler
 *	bgsnap_arm	per task, frozen, in its remote session: protect
 *	bgsnap_start	all tasks armed: copy what cannot wait, start the
 *			fault handler; the caller then lets the tree run
 *	bgsnap_write_pages  per task, in place of mm_write_pages
 *	bgsnap_finish	every page is out: stop the handler, unprotect
 *	bgsnap_abort	on failure: unprotect everything, the tree runs on
 */
#ifndef STASIS_COLLECT_BGSNAP_H
#define STASIS_COLLECT_BGSNAP_H

#include <stdbool.h>
#include <stdint.h>

#include "collect.h"

bool bgsnap_wanted(void);
int bgsnap_arm(struct ctask *ct);
/* true once bgsnap_start succeeded: the tree runs while pages are copied */
bool bgsnap_running(void);
/* before any task is armed: the fault handler runs from the first one */
int bgsnap_prepare(int nr);
int bgsnap_start(void);
int bgsnap_write_pages(struct ctask *ct, struct img_writer *w);
int bgsnap_finish(void);
void bgsnap_abort(void);

struct bgsnap_stats {
	bool used;
	uint64_t resumed_ns;	  /* when the tree ran again (now_ns) */
	uint64_t copy_ns;	  /* from then until the last page was copied */
	uint64_t pages_on_fault;  /* copied first because the tree wrote them */
	uint64_t pages_frozen;	  /* copied before the tree ran (not protectable) */
	uint64_t longest_wait_ns; /* the longest a write waited for its copy */
};
const struct bgsnap_stats *bgsnap_stats(void);

#endif
