// SPDX-License-Identifier: GPL-2.0
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stasis/fault.h"
#include "stasis/log.h"

/* How NAME appears in the list: 0 not at all, 1 to fail, 2 to hang. */
static int fault_wanted(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p = list;

	while (*p) {
		size_t len = strcspn(p, ",");

		if (len == n && !strncmp(p, name, n))
			return 1;
		if (len == n + 5 && !strncmp(p, name, n) && !strncmp(p + n, ":hang", 5))
			return 2;
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

/* Tell the test which process waits at which point. */
static void fault_announce(const char *name)
{
	const char *path = getenv(STASIS_FAULT_HANG_FILE_ENV);
	FILE *f = path && *path ? fopen(path, "ae") : NULL;

	if (!f)
		return;
	fprintf(f, "%s %d\n", name, (int)getpid());
	fclose(f);
}

bool fault_hit(const char *name)
{
	const char *list = getenv(STASIS_FAULT_ENV);

	if (!list || !*list)
		return false;
	switch (fault_wanted(list, name)) {
	case 1:
		pr_err("fault injected at %s (%s)", name, STASIS_FAULT_ENV);
		return true;
	case 2:
		pr_info("fault point %s: hanging until killed (%s)", name, STASIS_FAULT_ENV);
		fault_announce(name);
		/* the test kills us; a blocked or ignored signal must not end this */
		for (;;)
			pause();
	default:
		return false;
	}
}
