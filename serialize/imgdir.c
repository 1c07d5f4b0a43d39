// SPDX-License-Identifier: GPL-2.0
/*
 * Directory form of a checkpoint: one NAME.img file per image. Record
 * images are STASIS_IMG_MAGIC then (u32 length, protobuf) pairs; page
 * images are the raw pages, nothing else, so they stay page-aligned.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stasis/image.h"
#include "stasis/log.h"
#include "stasis/util.h"

#include "chain.h"

struct dir_image {
	char *name;
	int fd;
	uint64_t size;
	uint64_t flushed; /* writeback started up to here */
};

/* Page data is sent to the disk in runs of this size as it is written: the
 * disk works while the stream still flows, and the final fsync waits for
 * little. */
#define WRITEBACK_RUN (8u << 20)

struct img_dir_writer {
	char *dir;
	int dirfd;
	struct dir_image *images;
	size_t nr;
	/* stream image id -> images index + 1: frames from a reader find
	 * their file without a search */
	uint32_t *by_id;
	uint32_t by_id_len;
};

struct img_dir_writer *imgdir_create(const char *dir)
{
	struct img_dir_writer *d;
	struct rlimit rl;
	int fd;

	if (mkdir(dir, 0700) && errno != EEXIST) {
		pr_perror("cannot create images directory %s", dir);
		return NULL;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("cannot open images directory %s", dir);
		return NULL;
	}
	/* One descriptor per image is kept open until the final fsync. */
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	d = xzalloc(sizeof(*d));
	d->dir = xstrdup(dir);
	d->dirfd = fd;
	return d;
}

static void remember_id(struct img_dir_writer *d, uint32_t id, size_t idx)
{
	if (id >= STASIS_MAX_IMAGES)
		return;
	if (id >= d->by_id_len) {
		uint32_t len = d->by_id_len ? d->by_id_len : 64;

		while (len <= id)
			len *= 2;
		d->by_id = xrealloc(d->by_id, len * sizeof(*d->by_id));
		memset(d->by_id + d->by_id_len, 0, (len - d->by_id_len) * sizeof(*d->by_id));
		d->by_id_len = len;
	}
	d->by_id[id] = idx + 1;
}

static struct dir_image *dir_image(struct img_dir_writer *d, const char *name, uint32_t id)
{
	char path[STASIS_IMAGE_NAME_MAX + 8];
	struct dir_image *img;

	if (id < d->by_id_len && d->by_id[id] && !strcmp(d->images[d->by_id[id] - 1].name, name))
		return &d->images[d->by_id[id] - 1];
	for (size_t i = 0; i < d->nr; i++)
		if (!strcmp(d->images[i].name, name)) {
			remember_id(d, id, i);
			return &d->images[i];
		}
	snprintf(path, sizeof(path), "%s.img", name);
	int fd = openat(d->dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		pr_perror("cannot create %s/%s", d->dir, path);
		return NULL;
	}
	d->images = xrealloc(d->images, (d->nr + 1) * sizeof(*d->images));
	img = &d->images[d->nr++];
	img->name = xstrdup(name);
	img->fd = fd;
	img->size = 0;
	remember_id(d, id, d->nr - 1);
	if (!img_is_pages(name)) {
		if (write_full(fd, STASIS_IMG_MAGIC, 8)) {
			pr_perror("cannot write %s/%s", d->dir, path);
			return NULL;
		}
		img->size = 8;
	}
	return img;
}

int imgdir_put(struct img_dir_writer *d, const struct img_frame *f)
{
	struct dir_image *img;

	switch (f->hdr.kind) {
	case FRAME_HEAD:
	case FRAME_TRAILER:
		return 0;
	case FRAME_IMAGE:
		return dir_image(d, f->image, f->hdr.image) ? 0 : -1;
	case FRAME_RECORD: {
		uint32_t len = f->hdr.len;
		struct iovec iov[2] = { { &len, 4 }, { f->data, len } };

		img = dir_image(d, f->image, f->hdr.image);
		if (!img)
			return -1;
		if (writev_full(img->fd, iov, 2)) {
			pr_perror("cannot write %s/%s.img", d->dir, f->image);
			return -1;
		}
		img->size += 4 + len;
		return 0;
	}
	case FRAME_PAGES:
		img = dir_image(d, f->image, f->hdr.image);
		if (!img)
			return -1;
		if (f->hdr.offset != img->size) {
			pr_err("page frame %llu of %s is out of order (offset %llu, expected %llu)",
			       (unsigned long long)f->hdr.seq, f->image,
			       (unsigned long long)f->hdr.offset, (unsigned long long)img->size);
			return -1;
		}
		if (write_full(img->fd, f->data, f->hdr.len)) {
			pr_perror("cannot write %s/%s.img", d->dir, f->image);
			return -1;
		}
		img->size += f->hdr.len;
		if (img->size - img->flushed >= WRITEBACK_RUN) {
			/* only a hint: fsync at the end still decides */
			sync_file_range(img->fd, img->flushed, img->size - img->flushed,
					SYNC_FILE_RANGE_WRITE);
			img->flushed = img->size;
		}
		return 0;
	default:
		pr_err("frame %llu of %s has kind %u, which a directory cannot hold (sealed stream?)",
		       (unsigned long long)f->hdr.seq, f->image, f->hdr.kind);
		return -1;
	}
}

int imgdir_finish(struct img_dir_writer *d)
{
	for (size_t i = 0; i < d->nr; i++) {
		if (fsync(d->images[i].fd)) {
			pr_perror("cannot fsync %s/%s.img", d->dir, d->images[i].name);
			return -1;
		}
	}
	if (fsync(d->dirfd)) {
		pr_perror("cannot fsync %s", d->dir);
		return -1;
	}
	return 0;
}

void imgdir_free(struct img_dir_writer *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->nr; i++) {
		close(d->images[i].fd);
		free(d->images[i].name);
	}
	close(d->dirfd);
	free(d->images);
	free(d->by_id);
	free(d->dir);
	free(d);
}

bool img_file_name(const char *fname, char name[STASIS_IMAGE_NAME_MAX])
{
	size_t len = strlen(fname);

	if (len < 5 || strcmp(fname + len - 4, ".img") || len - 4 >= STASIS_IMAGE_NAME_MAX)
		return false;
	memcpy(name, fname, len - 4);
	name[len - 4] = 0;
	return img_name_valid(name);
}

/* ---- pack ---- */

static int image_rank(const char *name)
{
	if (!strcmp(name, "cipher"))
		return 0;
	if (!strcmp(name, "inventory"))
		return 1;
	if (!strcmp(name, "pstree"))
		return 2;
	if (!strncmp(name, "stats-", 6))
		return 5;
	if (img_is_pages(name))
		return 4;
	return 3;
}

int img_pack_cmp(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;
	int rx = image_rank(x), ry = image_rank(y);

	if (rx != ry)
		return rx - ry;
	if (rx == 4) { /* pages-2 before pages-10 */
		unsigned long nx = strtoul(x + 6, NULL, 10), ny = strtoul(y + 6, NULL, 10);

		if (nx != ny)
			return nx < ny ? -1 : 1;
	}
	return strcmp(x, y);
}

static int pack_records(const char *dir, const char *name, int fd, struct img_writer *w,
			struct chain *chain)
{
	char magic[8];
	void *buf = xmalloc(STASIS_FRAME_MAX);
	int ret = -1;

	if (read_full(fd, magic, 8) != 8 || memcmp(magic, STASIS_IMG_MAGIC, 8)) {
		pr_err("%s/%s.img: not a stasis image file", dir, name);
		goto out;
	}
	for (unsigned idx = 0;; idx++) {
		uint32_t len;
		ssize_t n = read_full(fd, &len, 4);

		if (n == 0)
			break;
		if (n != 4) {
			pr_err("%s/%s.img: truncated after record %u", dir, name, idx);
			goto out;
		}
		if (len > STASIS_FRAME_MAX) {
			pr_err("%s/%s.img: record %u claims %u bytes", dir, name, idx, len);
			goto out;
		}
		if (read_full(fd, buf, len) != (ssize_t)len) {
			pr_err("%s/%s.img: record %u is truncated", dir, name, idx);
			goto out;
		}
		if (chain ? chain_pack_pagemap(chain, name, buf, len, idx, w)
			  : imgw_record_raw(w, name, buf, len))
			goto out;
	}
	ret = 0;
out:
	free(buf);
	return ret;
}

static int pack_pages(const char *dir, const char *name, int fd, struct img_writer *w)
{
	void *buf = xmalloc(STASIS_PAGE_FRAME_SPAN);
	int ret = -1;

	for (;;) {
		ssize_t n = read_full(fd, buf, STASIS_PAGE_FRAME_SPAN);

		if (n < 0) {
			pr_perror("cannot read %s/%s.img", dir, name);
			goto out;
		}
		if (n == 0)
			break;
		if (imgw_pages(w, name, buf, n))
			goto out;
	}
	ret = 0;
out:
	free(buf);
	return ret;
}

static int pack_link(const char *dir, struct img_writer *w, bool resolve);

int imgdir_pack(const char *dir, struct img_writer *w)
{
	return pack_link(dir, w, true);
}

int imgdir_pack_link(const char *dir, struct img_writer *w)
{
	return pack_link(dir, w, false);
}

static int pack_link(const char *dir, struct img_writer *w, bool resolve)
{
	DIR *dp = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	size_t nr = 0;
	int ret = -1;
	bool inventory = false;
	struct chain *chain = NULL;

	if (!dp) {
		pr_perror("cannot open images directory %s", dir);
		return -1;
	}
	while ((de = readdir(dp))) {
		char name[STASIS_IMAGE_NAME_MAX];

		if (!img_file_name(de->d_name, name) || !img_in_checkpoint(name))
			continue;
		if (!strcmp(name, "inventory") || !strcmp(name, "cipher"))
			inventory = true;
		names = xrealloc(names, (nr + 1) * sizeof(*names));
		names[nr++] = xstrdup(name);
	}
	closedir(dp);
	if (!inventory) {
		pr_err("%s holds no checkpoint (no inventory.img)", dir);
		goto out;
	}
	qsort(names, nr, sizeof(*names), img_pack_cmp);
	if (resolve && chain_has_parent(dir)) {
		chain = chain_open(dir);
		if (!chain)
			goto out;
		if (!chain_needed(chain)) {
			chain_free(chain);
			chain = NULL;
		}
	}
	for (size_t i = 0; i < nr; i++) {
		struct img_frame decl = { .hdr = { .kind = FRAME_IMAGE }, .image = names[i] };
		char path[PATH_MAX];
		struct stat st;
		int fd;

		snprintf(path, sizeof(path), "%s/%s.img", dir, names[i]);
		/* O_NONBLOCK: a FIFO in the directory must not hang us */
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0) {
			pr_perror("cannot open %s", path);
			goto out;
		}
		if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
			pr_err("%s: not a regular file", path);
			close(fd);
			goto out;
		}
		fcntl(fd, F_SETFL, 0);
		posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
		/* declared first, so that an image without data is kept */
		if (imgw_frame(w, &decl)) {
			close(fd);
			goto out;
		}
		if (img_is_pages(names[i]))
			ret = chain ? chain_pack_pages(chain, names[i], fd, w)
				    : pack_pages(dir, names[i], fd, w);
		else
			ret = pack_records(dir, names[i], fd, w,
					   chain && !strncmp(names[i], "pagemap-", 8) ? chain : NULL);
		close(fd);
		if (ret)
			goto out;
		ret = -1;
	}
	ret = 0;
out:
	chain_free(chain);
	for (size_t i = 0; i < nr; i++)
		free(names[i]);
	free(names);
	return ret;
}
