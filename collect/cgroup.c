// SPDX-License-Identifier: GPL-2.0
/*
 * The cgroups of each thread, as /proc/PID/task/TID/cgroup shows them: one
 * "ID:CONTROLLERS:PATH" line per hierarchy. Recorded always (one read);
 * restored only with --manage-cgroups (inject/cgroup.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "collect.h"
#include "stasis/log.h"
#include "stasis/util.h"

int cgroup_collect_thread(struct ctask *ct, int thread, Stasis__ThreadCore *th)
{
	char path[64], *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/cgroup", ct->pid, ct->threads[thread].tid);
	f = fopen(path, "re");
	if (!f) {
		pr_perror("cannot open %s", path);
		return -1;
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] == '\n')
			line[--n] = 0;
		if (!n)
			continue;
		th->cgroups = xrealloc(th->cgroups, (th->n_cgroups + 1) * sizeof(char *));
		th->cgroups[th->n_cgroups++] = xstrdup(line);
	}
	free(line);
	fclose(f);
	return 0;
}
