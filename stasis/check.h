/* SPDX-License-Identifier: GPL-2.0 */
#ifndef STASIS_FRONTEND_CHECK_H
#define STASIS_FRONTEND_CHECK_H

#include <stdbool.h>

struct check_opts {
	bool extra;	     /* category 2 too (--extra, --all) */
	bool experimental;   /* category 3 too (--experimental, --all) */
	const char *feature; /* --feature NAME: only that one; "list": list them */
};

/*
 * stasis check: prints "Looks good." (returns 0), "Looks good but ..."
 * (2: a feature of category 2 or 3 is missing) or "Does not look good."
 * (1: a required one is), each missing feature on a line of its own with
 * what it costs. --feature NAME: "NAME is supported" (0) or why not (1).
 */
int check_run(const struct check_opts *c);

#endif
