// SPDX-License-Identifier: GPL-2.0
/*
 * Action scripts in stasis-inject, at the points criu(8) runs them in a
 * restore. stasis does not create namespaces: setup-namespaces runs once
 * the root task exists, for scripts that set up its (inherited)
 * namespaces. pre-restore runs in the front-end, before anything exists.
 */
#include "stasis/log.h"
#include "stasis/scripts.h"

#include "actions.h"

int actions_created(pid_t root)
{
	if (scripts_run("setup-namespaces", root)) {
		pr_err("setup-namespaces action script failed; aborting the restore of %d", root);
		return -1;
	}
	return 0;
}

int actions_restored(pid_t root)
{
	if (scripts_run("post-restore", root)) {
		pr_err("post-restore action script failed; aborting the restore of %d", root);
		return -1;
	}
	if (scripts_run("network-unlock", root))
		pr_warn("network-unlock action script failed (tree %d)", root);
	if (scripts_run("pre-resume", root))
		pr_warn("pre-resume action script failed (tree %d); resuming anyway", root);
	return 0;
}

void actions_resumed(pid_t root)
{
	if (scripts_run("post-resume", root))
		pr_warn("post-resume action script failed (tree %d)", root);
}
