// SPDX-License-Identifier: GPL-2.0
/*
 * --action-script in the front-end: it runs pre-dump and pre-restore itself
 * (before anything is frozen or created) and passes the scripts on to
 * stasis-collect (network-lock, post-dump, network-unlock) and
 * stasis-inject (setup-namespaces, post-restore, network-unlock,
 * pre-resume, post-resume), which run the stages that happen while they
 * hold the tree.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "stasis/log.h"
#include "stasis/scripts.h"
#include "stasis/util.h"
#include "stasis-image/image.h"
#include "stasis-image/imgfile.h"

#include "ops.h"

int fe_scripts_setup(const struct fe_opts *o, const char *images_dir)
{
	char abs[PATH_MAX];

	if (!o->nr_scripts)
		return 0;
	for (int i = 0; i < o->nr_scripts; i++)
		scripts_add(o->scripts[i]);
	/* criu(8) gives /proc/PID/fd/N of its images directory: a path that
	 * works in any program of the pipeline is more use */
	if (!realpath(images_dir, abs)) {
		pr_perror("cannot resolve the images directory %s", images_dir);
		return -1;
	}
	return setenv("CRTOOLS_IMAGE_DIR", abs, 1);
}

void fe_scripts_args(struct args *a, const struct fe_opts *o)
{
	for (int i = 0; i < o->nr_scripts; i++) {
		args_add(a, "--action-script");
		args_add(a, o->scripts[i]);
	}
}

int fe_scripts_run(const char *action, pid_t init_pid)
{
	return scripts_run(action, init_pid);
}

pid_t fe_checkpoint_root(const char *dir)
{
	size_t n = strlen(dir) + 16;
	char *p = xmalloc(n);
	int level = log_get_level();
	Stasis__Inventory *inv;
	pid_t pid = 0;

	snprintf(p, n, "%s/inventory.img", dir);
	/* quiet: a sealed checkpoint has no plaintext inventory */
	log_set_level(0);
	inv = (Stasis__Inventory *)imgfile_read_record(p, &stasis__inventory__descriptor, true);
	log_set_level(level);
	if (inv) {
		pid = inv->root_pid;
		protobuf_c_message_free_unpacked(&inv->base, NULL);
	}
	free(p);
	return pid;
}
