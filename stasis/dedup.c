// SPDX-License-Identifier: GPL-2.0
/* stasis dedup: stasis-serialize dedup -D DIR, the parents' superseded
 * pages punched. */
#include <stdlib.h>

#include "commands.h"
#include "ops.h"

int fe_run_dedup(const struct fe_opts *o, const char *dir, const char *log)
{
	struct pipeline p;
	struct stage *st;
	int rc = 1;

	pipeline_init(&p, "dedup");
	st = pipeline_add(&p, "stasis-serialize");
	if (st) {
		args_add(&st->argv, "dedup");
		args_add(&st->argv, "-D");
		args_add(&st->argv, dir);
		add_common(&st->argv, o, log);
		rc = pipeline_run(&p);
	}
	pipeline_free(&p);
	return rc;
}

int cmd_dedup(const struct fe_opts *o)
{
	const char *dir = o->str[S_IMAGES_DIR] ? o->str[S_IMAGES_DIR] : ".";
	char *log = fe_in_dir(dir, o->str[S_LOG_FILE]);
	int ret = fe_open_log(log, o) ? 1 : fe_run_dedup(o, dir, log);

	free(log);
	return ret;
}
