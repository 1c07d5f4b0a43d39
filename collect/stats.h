/* SPDX-License-Identifier: GPL-2.0 */
/* The stats-dump record: times and page counts of the dump. */
#ifndef STASIS_COLLECT_STATS_H
#define STASIS_COLLECT_STATS_H

#include "collect.h"

/* Marks the start of stasis-collect (the end of the freeze). */
void stats_start(void);
/* mm_collect and mm_write_pages, timed. */
int stats_mm_collect(struct ctask *ct, struct img_writer *w);
int stats_mm_write_pages(struct ctask *ct, struct img_writer *w);
/* Writes the stats-dump record for the nr tasks of cts (after the pages). */
int stats_write(struct img_writer *w, const struct ctask *cts, int nr);

#endif
