/* SPDX-License-Identifier: GPL-2.0 */
/* The stats-restore image (--stats-file) and --display-stats. */
#ifndef STASIS_INJECT_STATS_H
#define STASIS_INJECT_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "inject.h"

/* --stats-file PATH: where stats-restore goes (nowhere by default). */
void stats_set_file(const char *path);
/* --display-stats: print the figures on stdout too. */
void stats_set_display(bool on);
/* The tree was released: record (and show) what the restore took since
 * start_ns. Failing to write is only a warning: the tree runs already. */
void stats_restored(const struct itree *tr, uint64_t start_ns);

#endif
