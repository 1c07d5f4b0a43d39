// SPDX-License-Identifier: GPL-2.0
/*
 * The front-end's side of iterative checkpoints (docs/predump.md): which
 * link a pre-dump or dump continues, told to stasis-collect by the track
 * id in that link's inventory, and the DIR/parent symlink through which
 * stasis-serialize pack finds it again, as criu(8) lays a chain out.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/util.h"
#include "stasis-image/image.h"
#include "stasis-image/imgfile.h"

#include "commands.h"
#include "ops.h"
#include "pipeline.h"

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
	/* a sealed parent's inventory is not readable without its key: the
	 * link names the running tracker, and the restore, which opens every
	 * link, checks the ids */
	snprintf(tmp, sizeof(tmp), "%.*s/cipher.img", (int)(strlen(path) - strlen("/inventory.img")),
		 path);
	if (!access(tmp, F_OK)) {
		snprintf(hex, 2 * 16 + 1, "current");
		goto link;
	}
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

link:
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

bool fe_tracker_runs(pid_t root)
{
	char want[64], line[512];
	bool found = false;
	FILE *f = fopen("/proc/net/unix", "re");
	size_t n;

	if (!f)
		return false;
	/* the holder's abstract socket (collect/track.c), last on its line */
	n = snprintf(want, sizeof(want), " @stasis-track-%d\n", root);
	while (!found && fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);

		found = len >= n && !strcmp(line + len - n, want);
	}
	fclose(f);
	return found;
}

/* One link opened: stasis-seal --open -D from | stasis-serialize unpack -D to. */
static int open_link(const struct fe_opts *o, const char *from, const char *to, const char *log)
{
	char what[PATH_MAX + 32];
	struct stage *seal, *unpack;
	struct pipeline p;
	int rc = -1;

	snprintf(what, sizeof(what), "opening the sealed link %s", from);
	pipeline_init(&p, what);
	seal = pipeline_add(&p, "stasis-seal");
	unpack = pipeline_add(&p, "stasis-serialize");
	if (!seal || !unpack || pipeline_connect(&p, seal, unpack))
		goto out;
	fe_seal_open_args(&seal->argv, o);
	args_add(&seal->argv, "-D");
	args_add(&seal->argv, from);
	add_common(&seal->argv, o, log);
	args_add(&unpack->argv, "unpack");
	args_add(&unpack->argv, "-D");
	args_add(&unpack->argv, to);
	add_common(&unpack->argv, o, log);
	rc = pipeline_run(&p) ? -1 : 0;
out:
	pipeline_free(&p);
	return rc;
}

int fe_open_sealed_chain(const struct fe_opts *o, const char *dir, const char *log, char **tmp)
{
	char cur[PATH_MAX], to[PATH_MAX + 64], path[PATH_MAX + 64], base[64];
	const char *shm = access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm";
	struct stat st;

	*tmp = NULL;
	snprintf(cur, sizeof(cur), "%s/parent", dir);
	if (lstat(cur, &st))
		return 0;
	/* plaintext of the tree's memory: in memory, for root only */
	snprintf(base, sizeof(base), "%s/stasis-chain.XXXXXX", shm);
	*tmp = mkdtemp(xstrdup(base));
	if (!*tmp) {
		pr_perror("cannot make a directory in %s for the opened chain", shm);
		return -1;
	}
	snprintf(cur, sizeof(cur), "%s", dir);
	for (int k = 0;; k++) {
		Stasis__Inventory *inv;
		bool more;

		if (k == 64) {
			pr_err("%s: more than 64 links in the chain of parents", dir);
			return -1;
		}
		snprintf(path, sizeof(path), "%s/cipher.img", cur);
		if (access(path, F_OK)) {
			pr_err("%s: a link of the sealed chain of %s is not sealed", cur, dir);
			return -1;
		}
		snprintf(to, sizeof(to), "%s/%d", *tmp, k);
		if (open_link(o, cur, to, log))
			return -1;
		if (k) {
			snprintf(path, sizeof(path), "%s/%d/parent", *tmp, k - 1);
			snprintf(to, sizeof(to), "../%d", k);
			if (symlink(to, path)) {
				pr_perror("cannot link %s", path);
				return -1;
			}
		}
		snprintf(path, sizeof(path), "%s/%d/inventory.img", *tmp, k);
		inv = (Stasis__Inventory *)imgfile_read_record(path, &stasis__inventory__descriptor, 0);
		if (!inv)
			return -1;
		more = inv->has_parent_track_id;
		stasis__inventory__free_unpacked(inv, NULL);
		if (!more)
			break;
		if (strlen(cur) + 8 >= sizeof(cur)) {
			pr_err("%s: the chain of parents is too deep a path", dir);
			return -1;
		}
		strcat(cur, "/parent");
		if (lstat(cur, &st)) {
			pr_err("%s: the parent checkpoint (%s) it needs is missing", dir, cur);
			return -1;
		}
	}
	/* the newest link is tmp/0 */
	snprintf(path, sizeof(path), "%s/0", *tmp);
	free(*tmp);
	*tmp = xstrdup(path);
	return 1;
}

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path) && errno != ENOENT ? -1 : 0;
}

void fe_close_sealed_chain(char *tmp)
{
	char *slash;

	if (!tmp)
		return;
	/* tmp is TOP/0: everything under TOP goes */
	slash = strrchr(tmp, '/');
	if (slash && !strcmp(slash, "/0"))
		*slash = 0;
	if (nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS))
		pr_warn("cannot remove the opened chain in %s", tmp);
	free(tmp);
}
