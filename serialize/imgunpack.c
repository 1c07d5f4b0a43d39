// SPDX-License-Identifier: GPL-2.0
/*
 * Storing a checkpoint in a directory safely: for stasis-serialize unpack
 * and stasis-seal --encrypt -D.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stasis/fault.h"
#include "stasis/log.h"
#include "stasis/util.h"
#include "stasis-image/image.h"

/*
 * Frames are written into DIR/.stasis-unpack.PID, and the images move into
 * DIR only once the whole stream has arrived and is on disk: a failed or
 * truncated dump never leaves DIR looking like a checkpoint, and never
 * damages the checkpoint that DIR already held.
 */
struct stage {
	const char *dir;
	int dirfd;
	char name[64];
	char path[PATH_MAX];
	bool created_dir;
};

static void stage_remove(struct stage *s)
{
	int fd = openat(s->dirfd, s->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	DIR *dp;
	struct dirent *de;

	if (fd < 0)
		return;
	dp = fdopendir(fd);
	if (!dp) {
		close(fd);
		return;
	}
	while ((de = readdir(dp)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(fd, de->d_name, 0);
	closedir(dp);
	if (unlinkat(s->dirfd, s->name, AT_REMOVEDIR) && errno != ENOENT)
		pr_perror("cannot remove %s", s->path);
}

static int stage_open(struct stage *s, const char *dir)
{
	memset(s, 0, sizeof(*s));
	s->dir = dir;
	s->dirfd = -1;
	if (!mkdir(dir, 0700))
		s->created_dir = true;
	else if (errno != EEXIST) {
		pr_perror("cannot create images directory %s", dir);
		return -1;
	}
	s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0) {
		pr_perror("cannot open images directory %s", dir);
		return -1;
	}
	snprintf(s->name, sizeof(s->name), ".stasis-unpack.%d", (int)getpid());
	if ((size_t)snprintf(s->path, sizeof(s->path), "%s/%s", dir, s->name) >= sizeof(s->path)) {
		pr_err("images directory path is too long: %s", dir);
		return -1;
	}
	/* left over by an earlier unpack that had our PID and was killed */
	stage_remove(s);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int fsync_parent(const char *dir)
{
	char *copy = xstrdup(dir), *slash;
	int fd, ret = 0;

	/* strip trailing slashes, then the last component */
	for (size_t n = strlen(copy); n > 1 && copy[n - 1] == '/'; n--)
		copy[n - 1] = 0;
	slash = strrchr(copy, '/');
	if (!slash)
		strcpy(copy, ".");
	else if (slash == copy)
		copy[1] = 0;
	else
		*slash = 0;
	fd = open(copy, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd)) {
		pr_perror("cannot fsync %s", copy);
		ret = -1;
	}
	if (fd >= 0)
		close(fd);
	free(copy);
	return ret;
}

/* Moves the staged images into DIR and drops the images of an older
 * checkpoint that the new one does not have. */
static int stage_commit(struct stage *s)
{
	char **names = NULL, name[STASIS_IMAGE_NAME_MAX];
	size_t nr = 0;
	struct dirent *de;
	int fd, ret = -1;
	DIR *dp;

	fd = openat(s->dirfd, s->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || !(dp = fdopendir(fd))) {
		pr_perror("cannot open %s", s->path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((de = readdir(dp))) {
		if (!img_file_name(de->d_name, name))
			continue;
		if (renameat(fd, de->d_name, s->dirfd, de->d_name)) {
			pr_perror("cannot move %s/%s into %s", s->path, de->d_name, s->dir);
			closedir(dp);
			goto out;
		}
		names = xrealloc(names, (nr + 1) * sizeof(*names));
		names[nr++] = xstrdup(de->d_name);
	}
	closedir(dp);
	qsort(names, nr, sizeof(*names), cmp_str);

	fd = dup(s->dirfd);
	if (fd < 0 || !(dp = fdopendir(fd))) {
		pr_perror("cannot read %s", s->dir);
		if (fd >= 0)
			close(fd);
		goto out;
	}
	rewinddir(dp);
	while ((de = readdir(dp))) {
		const char *key = de->d_name;

		if (!img_file_name(de->d_name, name) ||
		    bsearch(&key, names, nr, sizeof(*names), cmp_str))
			continue;
		pr_info("removing %s/%s of an earlier checkpoint", s->dir, de->d_name);
		if (unlinkat(s->dirfd, de->d_name, 0) && errno != ENOENT) {
			pr_perror("cannot remove %s/%s of an earlier checkpoint", s->dir,
				  de->d_name);
			closedir(dp);
			goto out;
		}
	}
	closedir(dp);
	if (unlinkat(s->dirfd, s->name, AT_REMOVEDIR)) {
		pr_perror("cannot remove %s", s->path);
		goto out;
	}
	if (fsync(s->dirfd)) {
		pr_perror("cannot fsync %s", s->dir);
		goto out;
	}
	if (s->created_dir && fsync_parent(s->dir))
		goto out;
	ret = 0;
out:
	for (size_t i = 0; i < nr; i++)
		free(names[i]);
	free(names);
	return ret;
}

struct img_unpack {
	struct stage s;
	struct img_dir_writer *d;
	bool committed;
};

struct img_unpack *imgunpack_open(const char *dir)
{
	struct img_unpack *u = xzalloc(sizeof(*u));

	u->s.dirfd = -1;
	if (stage_open(&u->s, dir))
		goto fail;
	u->d = imgdir_create(u->s.path);
	if (!u->d)
		goto fail;
	return u;
fail:
	imgunpack_free(u);
	return NULL;
}

int imgunpack_put(void *arg, const struct img_frame *f)
{
	struct img_unpack *u = arg;

	return imgdir_put(u->d, f);
}

void *imgunpack_page_room(void *arg, const char *image, uint64_t offset, size_t len)
{
	struct img_unpack *u = arg;

	return u->d ? imgdir_page_room(u->d, image, offset, len) : NULL;
}

void imgunpack_page_hook(struct img_unpack *u, img_page_hook_fn fn, void *arg)
{
	imgdir_page_hook(u->d, fn, arg);
}

void imgunpack_page_flush(struct img_unpack *u)
{
	if (u->d)
		imgdir_page_flush(u->d);
}

int imgunpack_commit(struct img_unpack *u)
{
	if (imgdir_finish(u->d))
		return -1;
	imgdir_free(u->d);
	u->d = NULL;
	/* all stored but not yet in DIR: the older checkpoint is still whole */
	if (fault_hit("unpack-commit") || stage_commit(&u->s))
		return -1;
	u->committed = true;
	pr_info("checkpoint stored in %s", u->s.dir);
	return 0;
}

void imgunpack_free(struct img_unpack *u)
{
	if (!u)
		return;
	imgdir_free(u->d);
	if (u->s.dirfd >= 0) {
		if (!u->committed)
			stage_remove(&u->s);
		close(u->s.dirfd);
		if (!u->committed && u->s.created_dir)
			rmdir(u->s.dir); /* only if still empty */
	}
	free(u);
}

int img_ack(int fd)
{
	if (fd >= 0 && write_full(fd, "OK\n", 3)) {
		pr_perror("cannot write the acknowledgement to fd %d", fd);
		return -1;
	}
	return 0;
}
