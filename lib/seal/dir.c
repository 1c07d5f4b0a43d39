// SPDX-License-Identifier: GPL-2.0
/* Opening whole sealed streams and directories. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/util.h"

#include "seal-int.h"

int seal_open_fd(int fd, const char *what, const char *key_path, unsigned flags, seal_out_fn out,
		 void *arg)
{
	struct img_reader *r;
	struct seal_open *o;
	struct img_frame f;
	int n, ret = -1;

	o = seal_open_create(key_path, flags, out, arg);
	if (!o)
		return -1;
	r = imgr_open(fd, what);
	while ((n = imgr_next(r, &f)) > 0)
		if (seal_open_put(o, &f))
			goto out;
	if (n < 0)
		goto out;
	if (f.hdr.flags || f.hdr.image || f.hdr.offset) {
		pr_err("sealed checkpoint: trailer altered");
		goto out;
	}
	ret = seal_open_finish(o);
out:
	imgr_free(r);
	seal_open_free(o);
	return ret;
}

/*
 * A directory: its images in the order of stasis-serialize pack
 * (img_pack_cmp: pagetags-N among the record images, before pages-N), read
 * as docs/format.md describes the files, frame by frame.
 */

/* Frames as a stream of the directory would have them, but for seq (0). */
static int dir_image(struct seal_open *o, const char *dir, int dirfd, uint32_t id, const char *name,
		     uint8_t *buf)
{
	struct img_frame f = {
	    .hdr = {.kind = FRAME_IMAGE, .image = id}, .image = name, .data = buf};
	char fname[STASIS_IMAGE_NAME_MAX + 8];
	struct stat st;
	int fd, ret = -1;

	snprintf(fname, sizeof(fname), "%s.img", name);
	fd = openat(dirfd, fname, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		pr_err("cannot open %s/%s: %s", dir, fname,
		       fd < 0 ? strerror(errno) : "not a file");
		goto out;
	}
	if (seal_open_put(o, &f))
		goto out;
	if (img_is_pages(name)) {
		/* read past the page cache in large chunks, read ahead while
		 * this one is opened frame by frame */
		struct img_pages_rd *rd = img_pages_rd_open(fd);

		if (!rd)
			goto out;
		img_pages_rd_recycle(rd, seal_open_recycled(o));
		f.hdr.kind = FRAME_PAGES;
		for (;;) {
			void *pages;
			ssize_t n = img_pages_next(rd, &pages);

			if (n < 0) {
				pr_perror("cannot read %s/%s", dir, fname);
				img_pages_rd_free(rd);
				goto out;
			}
			if (!n)
				break;
			for (ssize_t at = 0; at < n; at += f.hdr.len) {
				f.hdr.len = n - at < STASIS_PAGE_FRAME_SPAN ? n - at
									  : STASIS_PAGE_FRAME_SPAN;
				f.data = (uint8_t *)pages + at;
				/* opened in place, then unmapped */
				f.stable = img_pages_rd_stable(rd);
				if (seal_open_put(o, &f)) {
					img_pages_rd_free(rd);
					goto out;
				}
				f.hdr.offset += f.hdr.len;
			}
		}
		img_pages_rd_free(rd);
	} else {
		/* buffered: a page tag a frame makes thousands of small records */
		FILE *fp = fdopen(fd, "r");
		uint32_t len;
		size_t n;

		if (!fp) {
			pr_perror("cannot read %s/%s", dir, fname);
			goto out;
		}
		fd = -1; /* fclose closes it */
		setvbuf(fp, NULL, _IOFBF, 64u << 10);
		f.hdr.kind = FRAME_RECORD;
		if (fread(buf, 1, 8, fp) != 8 || memcmp(buf, STASIS_IMG_MAGIC, 8)) {
			pr_err("%s/%s: not a stasis image file", dir, fname);
			fclose(fp);
			goto out;
		}
		for (unsigned idx = 0; (n = fread(&len, 1, 4, fp)) != 0; idx++) {
			if (n != 4 || len > STASIS_FRAME_MAX || fread(buf, 1, len, fp) != len) {
				pr_err("%s/%s: record %u is damaged or cut short", dir, fname, idx);
				fclose(fp);
				goto out;
			}
			f.hdr.len = len;
			if (seal_open_put(o, &f)) {
				fclose(fp);
				goto out;
			}
		}
		if (ferror(fp)) {
			pr_perror("cannot read %s/%s", dir, fname);
			fclose(fp);
			goto out;
		}
		fclose(fp);
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

int seal_dir_sealed(const char *dir)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/cipher.img", dir);
	if (!stat(path, &st))
		return 1;
	if (errno == ENOENT)
		return 0;
	pr_perror("cannot look at %s", path);
	return -1;
}

int seal_open_put_dir(struct seal_open *o, const char *dir)
{
	char **names = NULL, name[STASIS_IMAGE_NAME_MAX];
	size_t nr = 0;
	uint8_t *buf = NULL;
	struct dirent *de;
	int dirfd, ret = -1;
	DIR *dp;

	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dp = dirfd < 0 ? NULL : fdopendir(dup(dirfd));
	if (!dp) {
		pr_perror("cannot open images directory %s", dir);
		goto out;
	}
	while ((de = readdir(dp))) {
		if (!img_file_name(de->d_name, name) || !img_in_checkpoint(name))
			continue;
		names = xrealloc(names, (nr + 1) * sizeof(*names));
		names[nr++] = xstrdup(name);
	}
	closedir(dp);
	qsort(names, nr, sizeof(*names), img_pack_cmp);
	if (!nr || strcmp(names[0], "cipher")) {
		pr_err("%s holds no sealed checkpoint (no cipher.img)", dir);
		goto out;
	}
	buf = xmalloc(STASIS_FRAME_MAX);
	for (size_t i = 0; i < nr; i++)
		if (dir_image(o, dir, dirfd, i, names[i], buf))
			goto out;
	ret = 0;
out:
	free(buf);
	for (size_t i = 0; i < nr; i++)
		free(names[i]);
	free(names);
	if (dirfd >= 0)
		close(dirfd);
	if (ret)
		seal_open_fail(o);
	return ret;
}

int seal_open_dir(const char *dir, const char *key_path, unsigned flags, seal_out_fn out, void *arg)
{
	struct seal_open *o = seal_open_create(key_path, flags, out, arg);
	int ret;

	if (!o)
		return -1;
	ret = seal_open_put_dir(o, dir) || seal_open_finish(o) ? -1 : 0;
	seal_open_free(o);
	return ret;
}
