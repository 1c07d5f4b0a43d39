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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/util.h"
#include "stasis-image/image.h"

#include "chain.h"

/* A page image's file, where the page writer thread uses it. */
struct page_file {
	int fd;
	bool direct;	  /* opened O_DIRECT and every write so far aligned */
	uint64_t flushed; /* buffered writes: writeback started up to here */
};

struct dir_image {
	char *name;
	int fd;
	uint64_t size;
	struct page_file *pf; /* page images */
};

/* Buffered page data is sent to the disk in runs of this size as it is
 * written: the disk works while the stream still flows, and the final
 * fsync waits for little. */
#define WRITEBACK_RUN (8u << 20)

/*
 * Page data goes to its files from a thread of its own, with O_DIRECT:
 * the disk reads it from our buffers (no copy into the page cache, whose
 * cost was a third of a sealed dump's CPU time) while this thread reads
 * and transforms the next frames. Contiguous frames are gathered into
 * large buffers; a file or a write that O_DIRECT does not take is written
 * through the page cache instead.
 */
#define PAGE_BUF_SIZE (4u << 20)
#define PAGE_BUFS 4
#define DIRECT_ALIGN 4096

struct page_buf {
	struct page_file *pf;
	const char *name; /* the image's, for messages */
	uint64_t offset;
	size_t len;
	char *data;
};

struct page_writer {
	pthread_t th;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t queued, freed;
	struct page_buf bufs[PAGE_BUFS];
	/* buffers [done, filled) wait for the thread; filled is being filled
	 * when filling is set; counters run, indices are modulo PAGE_BUFS */
	uint64_t done, filled;
	bool filling;
	bool stop;
	int err; /* the first failure's errno, and where */
	const char *err_name;
	bool err_said; /* the hook said it */
	/* with a hook: buffers [hooked, filled) wait for it, on a thread of
	 * its own, and only [done, hooked) for the writer */
	img_page_hook_fn hook;
	void *hook_arg;
	pthread_t hook_th;
	bool hook_started;
	bool hook_failed;
	uint64_t hooked;
};

struct img_dir_writer {
	char *dir;
	int dirfd;
	struct dir_image *images;
	size_t nr;
	/* stream image id -> images index + 1: frames from a reader find
	 * their file without a search */
	uint32_t *by_id;
	uint32_t by_id_len;
	struct page_writer *pw;
	size_t last_room; /* images index imgdir_page_room found last */
	/* records of one image gathered (a sealed dump writes a page tag per
	 * page frame): images[rbuf_img], rbuf_len bytes */
	char *rbuf;
	size_t rbuf_len, rbuf_img;
	img_page_hook_fn hook;
	void *hook_arg;
};

#define RBUF_SIZE (64u << 10)

static int page_write(struct page_file *pf, const char *data, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n;

		if (pf->direct && (off % DIRECT_ALIGN || len % DIRECT_ALIGN)) {
			/* an odd length (the end of an image): the rest goes
			 * through the page cache, where any length goes */
			fcntl(pf->fd, F_SETFL, fcntl(pf->fd, F_GETFL) & ~O_DIRECT);
			pf->direct = false;
		}
		n = pwrite(pf->fd, data, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EINVAL && pf->direct) {
			pf->direct = false; /* opened, but not taken by this file system */
			fcntl(pf->fd, F_SETFL, fcntl(pf->fd, F_GETFL) & ~O_DIRECT);
			continue;
		}
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		data += n;
		off += n;
		len -= n;
	}
	if (!pf->direct && off - pf->flushed >= WRITEBACK_RUN) {
		/* only a hint: fsync at the end still decides */
		sync_file_range(pf->fd, pf->flushed, off - pf->flushed, SYNC_FILE_RANGE_WRITE);
		pf->flushed = off;
	}
	return 0;
}

/* Buffers the writer may take: those the hook is done with. */
static uint64_t page_writer_ready(const struct page_writer *pw)
{
	return pw->hook ? pw->hooked : pw->filled;
}

static void *page_writer_main(void *arg)
{
	struct page_writer *pw = arg;

	pthread_mutex_lock(&pw->mu);
	for (;;) {
		while (!pw->stop && pw->done == page_writer_ready(pw))
			pthread_cond_wait(&pw->queued, &pw->mu);
		if (pw->done == page_writer_ready(pw))
			break;
		struct page_buf *b = &pw->bufs[pw->done % PAGE_BUFS];
		bool failed = pw->err != 0;

		pthread_mutex_unlock(&pw->mu);
		/* after a failure, nothing more is written: it is not stored */
		int err = failed || !page_write(b->pf, b->data, b->len, b->offset) ? 0 : errno;
		pthread_mutex_lock(&pw->mu);
		if (err && !pw->err) {
			pw->err = err;
			pw->err_name = b->name;
		}
		pw->done++;
		pthread_cond_broadcast(&pw->freed);
	}
	pthread_mutex_unlock(&pw->mu);
	return NULL;
}

static void *page_hook_main(void *arg)
{
	struct page_writer *pw = arg;

	pthread_mutex_lock(&pw->mu);
	for (;;) {
		while (!pw->stop && pw->hooked == pw->filled)
			pthread_cond_wait(&pw->queued, &pw->mu);
		if (pw->stop)
			break;
		struct page_buf *b = &pw->bufs[pw->hooked % PAGE_BUFS];
		/* after the writer failed, the hook still sees every frame (it
		 * may wait for them), but never again after it failed itself */
		bool failed = pw->hook_failed;

		pthread_mutex_unlock(&pw->mu);
		int ret = failed ? 0 : pw->hook(pw->hook_arg, b->name, b->offset, b->data, b->len);
		pthread_mutex_lock(&pw->mu);
		if (ret)
			pw->hook_failed = true;
		if (ret && !pw->err) {
			pw->err = EIO;
			pw->err_name = b->name;
			pw->err_said = true;
		}
		pw->hooked++;
		pthread_cond_broadcast(&pw->queued);
	}
	pthread_mutex_unlock(&pw->mu);
	return NULL;
}

/* -1 when the thread failed; said once, by whoever asks with report. */
static int page_writer_failed(struct img_dir_writer *d, bool report)
{
	struct page_writer *pw = d->pw;
	int err;

	pthread_mutex_lock(&pw->mu);
	err = pw->err;
	pthread_mutex_unlock(&pw->mu);
	if (!err)
		return 0;
	if (!report || pw->err_said)
		return -1;
	errno = err;
	pr_perror("cannot write %s/%s.img", d->dir, pw->err_name);
	return -1;
}

static void page_writer_free(struct page_writer *pw);

static struct page_writer *page_writer_get(struct img_dir_writer *d)
{
	struct page_writer *pw = d->pw;
	char *mem;

	if (pw)
		return pw;
	mem = mmap(NULL, (size_t)PAGE_BUF_SIZE * PAGE_BUFS, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		pr_perror("cannot allocate the page write buffers");
		return NULL;
	}
	pw = xzalloc(sizeof(*pw));
	for (int i = 0; i < PAGE_BUFS; i++)
		pw->bufs[i].data = mem + (size_t)i * PAGE_BUF_SIZE;
	pthread_mutex_init(&pw->mu, NULL);
	pthread_cond_init(&pw->queued, NULL);
	pthread_cond_init(&pw->freed, NULL);
	pw->hook = d->hook;
	pw->hook_arg = d->hook_arg;
	if (pthread_create(&pw->th, NULL, page_writer_main, pw)) {
		pr_err("cannot start the page writer thread");
		page_writer_free(pw);
		return NULL;
	}
	pw->started = true;
	if (pw->hook) {
		if (pthread_create(&pw->hook_th, NULL, page_hook_main, pw)) {
			pr_err("cannot start the page hook thread");
			page_writer_free(pw);
			return NULL;
		}
		pw->hook_started = true;
	}
	d->pw = pw;
	return pw;
}

/* The buffer being filled goes to the thread. */
static void page_writer_submit(struct page_writer *pw)
{
	if (!pw->filling)
		return;
	pthread_mutex_lock(&pw->mu);
	pw->filled++;
	pw->filling = false;
	/* the hook's thread, or the writer */
	pthread_cond_broadcast(&pw->queued);
	pthread_mutex_unlock(&pw->mu);
}

/* Every buffer written (or the thread failed). */
static int page_writer_drain(struct img_dir_writer *d)
{
	struct page_writer *pw = d->pw;

	if (!pw)
		return 0;
	page_writer_submit(pw);
	pthread_mutex_lock(&pw->mu);
	while (pw->done != pw->filled)
		pthread_cond_wait(&pw->freed, &pw->mu);
	pthread_mutex_unlock(&pw->mu);
	return page_writer_failed(d, true);
}

static void page_writer_free(struct page_writer *pw)
{
	if (!pw)
		return;
	if (pw->started) {
		pthread_mutex_lock(&pw->mu);
		pw->stop = true;
		pw->err = pw->err ? pw->err : ECANCELED; /* write no more */
		pthread_cond_broadcast(&pw->queued);
		pthread_mutex_unlock(&pw->mu);
		pthread_join(pw->th, NULL);
		if (pw->hook_started)
			pthread_join(pw->hook_th, NULL);
	}
	munmap(pw->bufs[0].data, (size_t)PAGE_BUF_SIZE * PAGE_BUFS);
	pthread_mutex_destroy(&pw->mu);
	pthread_cond_destroy(&pw->queued);
	pthread_cond_destroy(&pw->freed);
	free(pw);
}

/* The buffer that takes room bytes of img's pages at off next: the one
 * being filled, or the next free one. NULL when the thread failed. */
static struct page_buf *page_writer_buf(struct img_dir_writer *d, struct page_writer *pw,
					struct dir_image *img, uint64_t off, size_t room, bool report)
{
	struct page_buf *b = &pw->bufs[pw->filled % PAGE_BUFS];

	if (pw->filling && (b->pf != img->pf || b->offset + b->len != off ||
			    PAGE_BUF_SIZE - b->len < room)) {
		page_writer_submit(pw);
		b = &pw->bufs[pw->filled % PAGE_BUFS];
	}
	if (!pw->filling) {
		pthread_mutex_lock(&pw->mu);
		while (pw->filled - pw->done == PAGE_BUFS)
			pthread_cond_wait(&pw->freed, &pw->mu);
		pthread_mutex_unlock(&pw->mu);
		if (page_writer_failed(d, report))
			return NULL;
		b->pf = img->pf;
		b->name = img->name;
		b->offset = off;
		b->len = 0;
		pw->filling = true;
	}
	return b;
}

/* len bytes of img's pages at off, appended to the buffers. */
static int page_writer_put(struct img_dir_writer *d, struct dir_image *img, const char *data,
			   size_t len, uint64_t off)
{
	struct page_writer *pw = page_writer_get(d);

	if (!pw)
		return -1;
	if (pw->filling) {
		struct page_buf *b = &pw->bufs[pw->filled % PAGE_BUFS];

		/* read into the room imgdir_page_room gave: already in place */
		if (b->pf == img->pf && b->offset + b->len == off && data == b->data + b->len &&
		    PAGE_BUF_SIZE - b->len >= len) {
			b->len += len;
			return 0;
		}
	}
	while (len) {
		/* a hook takes whole frames: never one split over two buffers */
		struct page_buf *b = page_writer_buf(d, pw, img, off, d->hook ? len : 1, true);

		if (!b)
			return -1;
		size_t chunk = PAGE_BUF_SIZE - b->len < len ? PAGE_BUF_SIZE - b->len : len;

		memcpy(b->data + b->len, data, chunk);
		b->len += chunk;
		data += chunk;
		off += chunk;
		len -= chunk;
	}
	return 0;
}

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
	bool pages = img_is_pages(name);
	int fd = -1;

	if (pages)
		fd = openat(d->dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT,
			    0600);
	if (fd < 0) /* a file system without O_DIRECT refuses it with EINVAL */
		fd = openat(d->dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		pr_perror("cannot create %s/%s", d->dir, path);
		return NULL;
	}
	d->images = xrealloc(d->images, (d->nr + 1) * sizeof(*d->images));
	img = &d->images[d->nr++];
	img->name = xstrdup(name);
	img->fd = fd;
	img->size = 0;
	img->pf = NULL;
	remember_id(d, id, d->nr - 1);
	if (pages) {
		img->pf = xzalloc(sizeof(*img->pf));
		img->pf->fd = fd;
		img->pf->direct = fcntl(fd, F_GETFL) & O_DIRECT;
	} else {
		if (write_full(fd, STASIS_IMG_MAGIC, 8)) {
			pr_perror("cannot write %s/%s", d->dir, path);
			return NULL;
		}
		img->size = 8;
	}
	return img;
}

void *imgdir_page_room(void *arg, const char *image, uint64_t offset, size_t len)
{
	struct img_dir_writer *d = arg;
	struct dir_image *img = NULL;
	struct page_writer *pw;
	struct page_buf *b;

	if (len > PAGE_BUF_SIZE)
		return NULL;
	/* page frames come in long runs of one image: the last one first */
	if (d->last_room < d->nr && !strcmp(d->images[d->last_room].name, image))
		img = &d->images[d->last_room];
	for (size_t i = 0; !img && i < d->nr; i++)
		if (!strcmp(d->images[i].name, image)) {
			img = &d->images[i];
			d->last_room = i;
		}
	/* only for the frame imgdir_put takes next, never for one it refuses */
	if (!img || !img->pf || offset != img->size)
		return NULL;
	pw = page_writer_get(d);
	if (!pw)
		return NULL;
	b = page_writer_buf(d, pw, img, offset, len, false); /* put says it */
	return b ? b->data + b->len : NULL;
}

/* The records gathered, written. */
static int rbuf_flush(struct img_dir_writer *d)
{
	struct dir_image *img = &d->images[d->rbuf_img];

	if (!d->rbuf_len)
		return 0;
	if (write_full(img->fd, d->rbuf, d->rbuf_len)) {
		pr_perror("cannot write %s/%s.img", d->dir, img->name);
		return -1;
	}
	d->rbuf_len = 0;
	return 0;
}

void imgdir_page_hook(struct img_dir_writer *d, img_page_hook_fn fn, void *arg)
{
	d->hook = fn;
	d->hook_arg = arg;
}

void imgdir_page_flush(struct img_dir_writer *d)
{
	if (d->pw)
		page_writer_submit(d->pw);
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
		size_t idx;

		img = dir_image(d, f->image, f->hdr.image);
		if (!img)
			return -1;
		idx = img - d->images;
		if (d->rbuf_len && (d->rbuf_img != idx || d->rbuf_len + 4 + len > RBUF_SIZE) &&
		    rbuf_flush(d))
			return -1;
		if (4 + len > RBUF_SIZE) {
			if (writev_full(img->fd, iov, 2)) {
				pr_perror("cannot write %s/%s.img", d->dir, f->image);
				return -1;
			}
		} else {
			if (!d->rbuf)
				d->rbuf = xmalloc(RBUF_SIZE);
			d->rbuf_img = idx;
			memcpy(d->rbuf + d->rbuf_len, &len, 4);
			memcpy(d->rbuf + d->rbuf_len + 4, f->data, len);
			d->rbuf_len += 4 + len;
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
		if (page_writer_put(d, img, f->data, f->hdr.len, f->hdr.offset))
			return -1;
		img->size += f->hdr.len;
		return 0;
	default:
		pr_err("frame %llu of %s has kind %u, which a directory cannot hold (sealed stream?)",
		       (unsigned long long)f->hdr.seq, f->image, f->hdr.kind);
		return -1;
	}
}

int imgdir_finish(struct img_dir_writer *d)
{
	if (rbuf_flush(d) || page_writer_drain(d))
		return -1;
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
	page_writer_free(d->pw);
	for (size_t i = 0; i < d->nr; i++) {
		close(d->images[i].fd);
		free(d->images[i].name);
		free(d->images[i].pf);
	}
	close(d->dirfd);
	free(d->rbuf);
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

void img_pages_direct(int fd)
{
	/* refused where the file system has no O_DIRECT: read as before */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_DIRECT);
}

ssize_t img_pages_read(int fd, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, (char *)buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EINVAL && (fcntl(fd, F_GETFL) & O_DIRECT)) {
			/* not taken here after all (an unaligned place) */
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_DIRECT);
			continue;
		}
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += n;
	}
	return done;
}

/* Chunks read ahead: one the caller holds, the others on their way. */
#define RD_BUFS 3
/* Chunks sent, and not known to be taken by the pipe's reader, kept for
 * reuse: the pipe holds 1 MiB, so the one sent before the last is taken. */
#define RD_SENT 4

/*
 * Every chunk is a mapping of its own, unmapped once the caller is done
 * with it and never reused: the data the caller sends on stays as read
 * (stable), so it can go into a pipe by reference. Its memory comes back
 * from the allocator's hot lists at once, in 2 MiB pages: on these VMs a
 * fresh 4 KiB page costs more to map than to copy, so without
 * transparent huge pages the chunks are reused instead (not stable).
 */
static bool chunks_fresh(void)
{
	static int fresh = -1;

	if (fresh < 0) {
		FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
		char line[128] = "";

		fresh = f && fgets(line, sizeof(line), f) && !strstr(line, "[never]");
		if (f)
			fclose(f);
	}
	return fresh;
}

static void *chunk_new(void)
{
	size_t huge = 2u << 20;
	char *p = mmap(NULL, IMG_PAGES_CHUNK + huge, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), *at;

	if (p == MAP_FAILED)
		return NULL;
	at = (char *)(((uintptr_t)p + huge - 1) & ~(uintptr_t)(huge - 1));
	if (at > p)
		munmap(p, at - p);
	if (p + huge > at)
		munmap(at + IMG_PAGES_CHUNK, p + huge - at);
	madvise(at, IMG_PAGES_CHUNK, MADV_HUGEPAGE);
	return at;
}

struct img_pages_rd {
	int fd;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t filled_cv, freed_cv;
	void *buf[RD_BUFS]; /* NULL: unmapped, mapped again for the next chunk */
	bool fresh;	    /* chunk_new for every chunk, or the buffers reused */
	ssize_t len[RD_BUFS];
	int err[RD_BUFS];
	/* chunks [taken, filled) wait for the caller, who holds taken - 1
	 * until the next call; counters run, indices are modulo RD_BUFS */
	uint64_t filled, taken;
	bool stop;
	/* img_pages_rd_recycle: chunks sent to w, kept until its reader has
	 * taken them (the caller's thread only), and those it has, for the
	 * reading thread to read into again (under mu) */
	const struct img_writer *w;
	struct sent_chunk {
		void *buf;
		uint64_t end; /* imgw_written once it was sent */
	} sent[RD_SENT];
	unsigned nr_sent;
	void *clean[RD_SENT];
	unsigned nr_clean;
	uint64_t reused, mapped;
};

static void *pages_rd_main(void *arg)
{
	struct img_pages_rd *rd = arg;

	for (;;) {
		uint64_t i;
		ssize_t n;
		bool stop;
		void *buf;

		pthread_mutex_lock(&rd->mu);
		/* the caller's chunk (taken - 1) is not overwritten */
		while (!rd->stop && rd->filled - rd->taken + 1 >= RD_BUFS)
			pthread_cond_wait(&rd->freed_cv, &rd->mu);
		i = rd->filled % RD_BUFS;
		stop = rd->stop;
		pthread_mutex_unlock(&rd->mu);
		if (stop)
			return NULL;
		buf = rd->buf[i];
		if (!buf) {
			pthread_mutex_lock(&rd->mu);
			buf = rd->nr_clean ? rd->clean[--rd->nr_clean] : NULL;
			pthread_mutex_unlock(&rd->mu);
			if (buf)
				rd->reused++;
			else if ((buf = chunk_new()))
				rd->mapped++;
		}
		n = buf ? img_pages_read(rd->fd, buf, IMG_PAGES_CHUNK) : (errno = ENOMEM, -1);
		pthread_mutex_lock(&rd->mu);
		rd->buf[i] = buf;
		rd->len[i] = n;
		rd->err[i] = n < 0 ? errno : 0;
		rd->filled++;
		pthread_cond_signal(&rd->filled_cv);
		pthread_mutex_unlock(&rd->mu);
		if (n <= 0)
			return NULL; /* the end, or a failure: nothing more to read */
	}
}

struct img_pages_rd *img_pages_rd_open(int fd)
{
	struct img_pages_rd *rd = xzalloc(sizeof(*rd));

	rd->fd = fd;
	rd->taken = 1; /* the caller holds no chunk yet */
	rd->filled = 1;
	rd->fresh = chunks_fresh();
	pthread_mutex_init(&rd->mu, NULL);
	pthread_cond_init(&rd->filled_cv, NULL);
	pthread_cond_init(&rd->freed_cv, NULL);
	img_pages_direct(fd);
	if (pthread_create(&rd->th, NULL, pages_rd_main, rd)) {
		pr_err("cannot start the page reader thread");
		pthread_mutex_destroy(&rd->mu);
		pthread_cond_destroy(&rd->filled_cv);
		pthread_cond_destroy(&rd->freed_cv);
		free(rd);
		return NULL;
	}
	return rd;
}

void img_pages_rd_recycle(struct img_pages_rd *rd, const struct img_writer *w)
{
	if (rd && w && rd->fresh && imgw_reader_copies_set(w))
		rd->w = w;
}

/*
 * done went to rd->w: kept; the chunks sent before it that the reader has
 * taken whole go to the reading thread, to be read into again (the oldest
 * kept is unmapped when there is no room).
 */
static void chunk_sent(struct img_pages_rd *rd, void *done)
{
	uint64_t taken = imgw_taken(rd->w);
	unsigned keep = 0;

	if (rd->nr_sent == RD_SENT) {
		munmap(rd->sent[0].buf, IMG_PAGES_CHUNK);
		memmove(rd->sent, rd->sent + 1, --rd->nr_sent * sizeof(rd->sent[0]));
	}
	rd->sent[rd->nr_sent++] = (struct sent_chunk){ done, imgw_written(rd->w) };
	pthread_mutex_lock(&rd->mu);
	for (unsigned i = 0; i < rd->nr_sent; i++) {
		if (rd->sent[i].end <= taken && rd->nr_clean < RD_SENT)
			rd->clean[rd->nr_clean++] = rd->sent[i].buf;
		else
			rd->sent[keep++] = rd->sent[i];
	}
	pthread_mutex_unlock(&rd->mu);
	rd->nr_sent = keep;
}

ssize_t img_pages_next(struct img_pages_rd *rd, void **data)
{
	void *done = NULL;
	uint64_t i;
	ssize_t n;
	int err;

	pthread_mutex_lock(&rd->mu);
	/* a chunk of 0 or -1 ended the reading: it stays the answer */
	if (rd->taken > 1 && rd->len[(rd->taken - 1) % RD_BUFS] <= 0) {
		i = (rd->taken - 1) % RD_BUFS;
	} else {
		while (rd->filled == rd->taken)
			pthread_cond_wait(&rd->filled_cv, &rd->mu);
		if (rd->taken > 1 && rd->fresh) { /* the caller is done with the one it held */
			done = rd->buf[(rd->taken - 1) % RD_BUFS];
			rd->buf[(rd->taken - 1) % RD_BUFS] = NULL;
		}
		i = rd->taken++ % RD_BUFS;
		pthread_cond_signal(&rd->freed_cv);
	}
	n = rd->len[i];
	err = rd->err[i];
	*data = rd->buf[i];
	pthread_mutex_unlock(&rd->mu);
	if (done && rd->w)
		chunk_sent(rd, done);
	else if (done)
		munmap(done, IMG_PAGES_CHUNK);
	errno = err;
	return n;
}

bool img_pages_rd_stable(const struct img_pages_rd *rd)
{
	return rd->fresh;
}

void img_pages_rd_free(struct img_pages_rd *rd)
{
	if (!rd)
		return;
	pthread_mutex_lock(&rd->mu);
	rd->stop = true;
	pthread_cond_signal(&rd->freed_cv);
	pthread_mutex_unlock(&rd->mu);
	pthread_join(rd->th, NULL);
	pthread_mutex_destroy(&rd->mu);
	pthread_cond_destroy(&rd->filled_cv);
	pthread_cond_destroy(&rd->freed_cv);
	for (int i = 0; i < RD_BUFS; i++)
		if (rd->buf[i])
			munmap(rd->buf[i], IMG_PAGES_CHUNK);
	for (unsigned i = 0; i < rd->nr_sent; i++)
		munmap(rd->sent[i].buf, IMG_PAGES_CHUNK);
	for (unsigned i = 0; i < rd->nr_clean; i++)
		munmap(rd->clean[i], IMG_PAGES_CHUNK);
	if (rd->w)
		pr_debug("page chunks: %llu read into again, %llu mapped",
			 (unsigned long long)rd->reused, (unsigned long long)rd->mapped);
	free(rd);
}

static int pack_pages(const char *dir, const char *name, int fd, struct img_writer *w)
{
	struct img_pages_rd *rd = img_pages_rd_open(fd);
	int ret = -1;

	if (!rd)
		return -1;
	img_pages_rd_recycle(rd, w);
	for (;;) {
		void *buf;
		ssize_t n = img_pages_next(rd, &buf);

		if (n < 0) {
			pr_perror("cannot read %s/%s.img", dir, name);
			goto out;
		}
		if (n == 0)
			break;
		if ((img_pages_rd_stable(rd) ? imgw_pages_stable : imgw_pages)(w, name, buf, n))
			goto out;
	}
	ret = 0;
out:
	img_pages_rd_free(rd);
	return ret;
}

static int pack_link(const char *dir, struct img_writer *w, bool resolve, bool lazy);

int imgdir_pack(const char *dir, struct img_writer *w)
{
	return pack_link(dir, w, true, false);
}

int imgdir_pack_lazy(const char *dir, struct img_writer *w)
{
	return pack_link(dir, w, true, true);
}

int imgdir_pack_link(const char *dir, struct img_writer *w)
{
	return pack_link(dir, w, false, false);
}

static int pack_link(const char *dir, struct img_writer *w, bool resolve, bool lazy)
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
	if (lazy || (resolve && chain_has_parent(dir))) {
		uint64_t omitted = 0;

		chain = chain_open(dir);
		if (!chain || (lazy && chain_omit_lazy(chain, &omitted)))
			goto out;
		if (lazy)
			pr_info("%s: %llu pages left to the lazy-pages daemon, not streamed", dir,
				(unsigned long long)omitted);
		else if (!chain_needed(chain)) {
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
