// SPDX-License-Identifier: GPL-2.0
/*
 * Action scripts in stasis-collect, at the points criu(8) runs them in a
 * dump: network-lock after the freeze, post-dump once the images are
 * stored, network-unlock when the tree is to run again. pre-dump runs in
 * the front-end, before anything is frozen.
 */
#include <stdbool.h>

#include "stasis/log.h"
#include "stasis/scripts.h"

#include "actions.h"

static bool locked;

int actions_frozen(pid_t root)
{
	locked = true;
	if (scripts_run("network-lock", root)) {
		pr_err("network-lock action script failed; resuming the tree of %d", root);
		return -1;
	}
	return 0;
}

int actions_stored(pid_t root)
{
	if (scripts_run("post-dump", root)) {
		pr_err("post-dump action script failed; the checkpoint is stored but the tree of "
		       "%d is resumed",
		       root);
		return -1;
	}
	return 0;
}

void actions_resume(pid_t root)
{
	if (!locked)
		return;
	locked = false;
	if (scripts_run("network-unlock", root))
		pr_warn("network-unlock action script failed (tree %d)", root);
}
