/* SPDX-License-Identifier: GPL-2.0 */
/* The stats-dump and stats-restore images, printed as criu(8) does. */
#ifndef STASIS_STATS_H
#define STASIS_STATS_H

#include <stdio.h>

#include "stasis-image/image.h"

void stats_print_dump(FILE *f, const Stasis__DumpStats *s);
void stats_print_restore(FILE *f, const Stasis__RestoreStats *s);

#endif
