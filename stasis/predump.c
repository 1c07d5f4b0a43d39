// SPDX-License-Identifier: GPL-2.0
/*
 * The front-end's side of iterative checkpoints (docs/predump.md): which
 * link a pre-dump or dump continues, told to stasis-collect by the track
 * id in that link's inventory, and the DIR/parent symlink through which
 * stasis-serialize pack finds it again, as criu(8) lays a chain out.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stasis/image.h"
#include "stasis/imgfile.h"
#include "stasis/log.h"
#include "stasis/util.h"

#include "ops.h"

int fe_prev_link(const struct fe_opts *o, const char *dir, char hex[2 * 16 + 1])
{
	const char *prev = o->str[S_PREV_IMAGES_DIR];
	char path[PATH_MAX], link[PATH_MAX], tmp[PATH_MAX];
	Stasis__Inventory *inv;
	ssize_t n;

	if (!prev)
		return 0;
	if (!*prev) {
		pr_err("--prev-images-dir is an empty string");
		return -1;
	}
	/* relative to the images directory, as in criu(8) */
	if (prev[0] == '/')
		snprintf(path, sizeof(path), "%s/inventory.img", prev);
	else
		snprintf(path, sizeof(path), "%s/%s/inventory.img", dir, prev);
	inv = (Stasis__Inventory *)imgfile_read_record(path, &stasis__inventory__descriptor, 1);
	if (!inv) {
		pr_err("--prev-images-dir %s holds no checkpoint (%s)", prev, path);
		return -1;
	}
	if (!inv->has_track_id || inv->track_id.len != 16) {
		pr_err("--prev-images-dir %s was not taken with memory tracking (pre-dump, or "
		       "dump --track-mem)",
		       prev);
		stasis__inventory__free_unpacked(inv, NULL);
		return -1;
	}
	hex_encode(inv->track_id.data, 16, hex);
	stasis__inventory__free_unpacked(inv, NULL);

	/* DIR/parent -> prev, replaced atomically if it points elsewhere */
	snprintf(link, sizeof(link), "%s/parent", dir);
	n = readlink(link, tmp, sizeof(tmp) - 1);
	if (n >= 0) {
		tmp[n] = 0;
		if (!strcmp(tmp, prev))
			return 1;
	}
	snprintf(tmp, sizeof(tmp), "%s/.parent.%d", dir, getpid());
	unlink(tmp);
	if (symlink(prev, tmp) || rename(tmp, link)) {
		pr_perror("cannot link %s to the parent images %s", link, prev);
		unlink(tmp);
		return -1;
	}
	return 1;
}
