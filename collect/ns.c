// SPDX-License-Identifier: GPL-2.0
/*
 * Namespaces. stasis restores a tree into the namespaces of stasis-inject
 * and makes none, so a task in a namespace other than stasis-collect's
 * would come back in the wrong one (another hostname, network, IPC keys,
 * PIDs, cgroup paths): it is refused before anything is touched. Mount
 * namespaces are not compared: `ip netns exec` makes one for every command
 * it runs, and the files of a task are taken as the task sees them.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "collect.h"
#include "stasis/log.h"

static const struct {
	const char *file, *name;
	bool children; /* the namespace its next children get */
} kinds[] = {
	{ "net", "network", false },
	{ "uts", "UTS", false },
	{ "ipc", "IPC", false },
	{ "pid", "PID", false },
	{ "pid_for_children", "PID", true },
	{ "user", "user", false },
	{ "time", "time", false },
	{ "time_for_children", "time", true },
	{ "cgroup", "cgroup", false },
};

int ns_check_task(pid_t pid)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		char own_path[64], path[64];
		struct stat own, st;

		snprintf(own_path, sizeof(own_path), "/proc/self/ns/%s", kinds[i].file);
		if (stat(own_path, &own))
			continue; /* not in this kernel */
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, kinds[i].file);
		if (stat(path, &st)) {
			pr_perror("cannot read the %s namespace of task %d", kinds[i].name, pid);
			return -1;
		}
		if (st.st_ino == own.st_ino && st.st_dev == own.st_dev)
			continue;
		if (kinds[i].children)
			pr_err("task %d made a %s namespace for its children to come, which stasis "
			       "does not support",
			       pid, kinds[i].name);
		else
			pr_err("task %d is in another %s namespace, which stasis does not support",
			       pid, kinds[i].name);
		return -1;
	}
	return 0;
}
