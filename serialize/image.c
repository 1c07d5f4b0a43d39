// SPDX-License-Identifier: GPL-2.0
/*
 * Frame reader and writer of the image stream. Every input is hostile:
 * lengths and ids are checked before use and memory stays bounded by
 * STASIS_FRAME_MAX plus the image-name table.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/nameidx.h"
#include "stasis/util.h"
#include "stasis-image/image.h"

#include "readahead.h"

#define WBUF_SIZE (64u << 10)

struct img_name {
	char *name;
	uint64_t offset; /* page images: bytes written so far */
};

struct img_writer {
	int fd;
	/* imgw_open_sink: frames go to sink one by one, not to fd */
	img_sink_fn sink;
	void *sink_arg;
	uint64_t seq;
	uint64_t bytes;
	struct img_name *images;
	uint32_t nr_images;
	struct name_index index;
	char *buf;
	size_t buf_len;
	/* Page data not framed yet. A page frame ends only at a multiple of
	 * STASIS_PAGE_FRAME_SPAN or where the image's run of data ends, however
	 * the caller cuts it up: the same image gives the same frames. */
	char *pbuf;
	size_t pend_len;
	uint32_t pend_id;
	/* fd is a pipe that takes vmsplice: 1; not: 0; not known yet: -1 */
	int splice_out;
	/* the reader of the pipe copies what it takes (read(2), no splice) */
	bool reader_copies;
	bool spliced; /* some data went in by reference */
	bool failed;
};

struct img_reader {
	int fd;
	char *what;
	uint64_t seq;
	char **images;
	uint32_t nr_images;
	struct name_index index;
	void *buf;
	size_t buf_size;
	bool head_seen;
	bool done;
	bool link; /* one link of a concatenated chain: more may follow */
	bool empty; /* link: the input ended where a link would start */
	img_room_fn room;
	void *room_arg;
	struct readahead *ra; /* imgr_readahead */
};

bool img_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (!n || n >= STASIS_IMAGE_NAME_MAX || name[0] == '.')
		return false;
	for (; *name; name++)
		if (!((*name >= 'a' && *name <= 'z') || (*name >= '0' && *name <= '9') ||
		      *name == '-' || *name == '_' || *name == '.'))
			return false;
	return true;
}

bool img_in_checkpoint(const char *name)
{
	/* stats-lazy: the page server's, written after the checkpoint */
	return strcmp(name, "stats-restore") != 0 && strcmp(name, "stats-lazy") != 0;
}

bool img_is_pages(const char *image)
{
	return !strncmp(image, "pages-", 6);
}

/* Images whose first record differs from the rest. */
static const struct {
	const char *prefix;
	const ProtobufCMessageDescriptor *first, *rest;
} record_types[] = {
	{ "inventory", &stasis__inventory__descriptor, NULL },
	{ "pstree", &stasis__pstree_entry__descriptor, &stasis__pstree_entry__descriptor },
	{ "core-", &stasis__task_core__descriptor, &stasis__thread_core__descriptor },
	{ "mm-", &stasis__mm_entry__descriptor, NULL },
	{ "pagemap-", &stasis__pagemap_head__descriptor, &stasis__pagemap_entry__descriptor },
	{ "fs-", &stasis__fs_entry__descriptor, NULL },
	{ "fdinfo-", &stasis__fdinfo_entry__descriptor, &stasis__fdinfo_entry__descriptor },
	{ "files", &stasis__file_entry__descriptor, &stasis__file_entry__descriptor },
	{ "pipes-data", &stasis__data_chunk__descriptor, &stasis__data_chunk__descriptor },
	{ "tcp-recvq", &stasis__data_chunk__descriptor, &stasis__data_chunk__descriptor },
	{ "tcp-sendq", &stasis__data_chunk__descriptor, &stasis__data_chunk__descriptor },
	{ "ghosts", &stasis__ghost_file__descriptor, &stasis__ghost_file__descriptor },
	{ "ghost-data", &stasis__data_chunk__descriptor, &stasis__data_chunk__descriptor },
	{ "file-locks", &stasis__file_lock__descriptor, &stasis__file_lock__descriptor },
	{ "memfds", &stasis__memfd_inode__descriptor, &stasis__memfd_inode__descriptor },
	{ "memfd-data", &stasis__data_chunk__descriptor, &stasis__data_chunk__descriptor },
	{ "cgroups", &stasis__cgroup_dir__descriptor, &stasis__cgroup_dir__descriptor },
	{ "ns", &stasis__ns_entry__descriptor, &stasis__ns_entry__descriptor },
	{ "mnt-files", &stasis__mnt_file__descriptor, &stasis__mnt_file__descriptor },
	{ "mnt-data", &stasis__data_chunk__descriptor, &stasis__data_chunk__descriptor },
	{ "ipc-shm", &stasis__ipc_shm_chunk__descriptor, &stasis__ipc_shm_chunk__descriptor },
	{ "ipc-msg", &stasis__ipc_msg__descriptor, &stasis__ipc_msg__descriptor },
	/* sealed checkpoints (lib/seal/): cipher and pagetags-N are plaintext;
	 * seal is encrypted like every other record image */
	{ "cipher", &stasis__seal_cipher__descriptor, NULL },
	{ "pagetags-", &stasis__page_tag__descriptor, &stasis__page_tag__descriptor },
	{ "seal", &stasis__seal_summary__descriptor, &stasis__seal_summary__descriptor },
	/* the response stream of a lazy page source */
	{ "lazy-pages", &stasis__lazy_pages__descriptor, &stasis__lazy_pages__descriptor },
	{ "stats-dump", &stasis__dump_stats__descriptor, NULL },
	{ "stats-restore", &stasis__restore_stats__descriptor, NULL },
	{ "stats-lazy", &stasis__dump_stats__descriptor, NULL },
};

const ProtobufCMessageDescriptor *img_record_desc(const char *image, unsigned idx)
{
	for (size_t i = 0; i < ARRAY_SIZE(record_types); i++) {
		size_t n = strlen(record_types[i].prefix);
		bool prefix = record_types[i].prefix[n - 1] == '-';

		if (prefix ? strncmp(image, record_types[i].prefix, n)
			   : strcmp(image, record_types[i].prefix))
			continue;
		return idx ? record_types[i].rest : record_types[i].first;
	}
	return NULL;
}

/* ---- writer ---- */

static int wflush(struct img_writer *w)
{
	if (w->failed)
		return -1;
	if (w->buf_len && write_full(w->fd, w->buf, w->buf_len)) {
		pr_perror("cannot write image stream");
		w->failed = true;
		return -1;
	}
	w->buf_len = 0;
	return 0;
}

/*
 * Stable page data goes into the pipe by reference (vmsplice): the pipe
 * holds its pages, the reader's read(2) is their only copy, and the pipe's
 * lock is not held for a copy on this side. Safe whatever reads the pipe
 * (a splice relay too) because stable data is never written again; its
 * pages live on in the pipe after they are unmapped here. 1: not taken
 * (not a pipe), 0: done, -1: failed (errno).
 */
static int splice_payload(struct img_writer *w, const void *payload, size_t len)
{
	struct iovec iov = { (void *)payload, len };

	if (w->splice_out < 0) {
		struct stat st;

		w->splice_out = !fstat(w->fd, &st) && S_ISFIFO(st.st_mode);
	}
	if (!w->splice_out)
		return 1;
	while (iov.iov_len) {
		ssize_t n = vmsplice(w->fd, &iov, 1, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && iov.iov_len == len && (errno == EINVAL || errno == ENOSYS)) {
			w->splice_out = 0; /* write(2) from now on */
			return 1;
		}
		if (n <= 0)
			return -1;
		w->spliced = true;
		iov.iov_base = (char *)iov.iov_base + n;
		iov.iov_len -= n;
	}
	return 0;
}

void imgw_reader_copies(struct img_writer *w)
{
	w->reader_copies = true;
}

bool imgw_reader_copies_set(const struct img_writer *w)
{
	return w->reader_copies && !w->sink;
}

uint64_t imgw_written(const struct img_writer *w)
{
	return w->bytes - w->buf_len;
}

/* Bytes the reader has taken out of the pipe: those written, but for what
 * the pipe still holds. Not known: 0. */
uint64_t imgw_taken(const struct img_writer *w)
{
	int held;

	if (!w->spliced || ioctl(w->fd, FIONREAD, &held) || held < 0)
		return 0;
	return imgw_written(w) - held;
}

int imgw_wait_taken(const struct img_writer *w, uint64_t end)
{
	struct pollfd pfd = { .fd = w->fd };

	if (!w->spliced)
		return 0; /* every byte was copied as it was written */
	while (imgw_taken(w) < end) {
		/* no events asked: woken only when the reader is gone */
		if (poll(&pfd, 1, 1) > 0 && (pfd.revents & (POLLERR | POLLHUP | POLLNVAL))) {
			errno = EPIPE;
			return -1;
		}
	}
	return 0;
}

static int wemit_data(struct img_writer *w, uint16_t kind, uint32_t image, uint64_t offset,
		      const void *payload, size_t len, bool stable)
{
	struct stasis_frame_hdr hdr = {
		.magic = STASIS_FRAME_MAGIC,
		.kind = kind,
		.image = image,
		.len = len,
		.seq = w->seq++,
		.offset = offset,
	};

	if (w->failed)
		return -1;
	if (len > STASIS_FRAME_MAX) {
		pr_err("frame of %zu bytes exceeds the format's limit", len);
		return -1;
	}
	w->bytes += sizeof(hdr) + len;
	if (w->sink) {
		struct img_frame f = { .hdr = hdr, .data = (void *)payload, .stable = stable };

		if (kind != FRAME_HEAD && kind != FRAME_TRAILER)
			f.image = w->images[image].name;
		if (w->sink(w->sink_arg, &f)) {
			w->failed = true;
			return -1;
		}
		return 0;
	}
	if (w->buf_len + sizeof(hdr) + len <= WBUF_SIZE) {
		memcpy(w->buf + w->buf_len, &hdr, sizeof(hdr));
		memcpy(w->buf + w->buf_len + sizeof(hdr), payload, len);
		w->buf_len += sizeof(hdr) + len;
		return 0;
	}
	/* Large payloads (pages) go straight out, without a copy. */
	if (wflush(w))
		return -1;
	if (stable) {
		int r;

		if (write_full(w->fd, &hdr, sizeof(hdr))) {
			pr_perror("cannot write image stream");
			w->failed = true;
			return -1;
		}
		r = splice_payload(w, payload, len);
		if (r < 0) {
			pr_perror("cannot write image stream");
			w->failed = true;
			return -1;
		}
		if (!r)
			return 0;
		if (write_full(w->fd, payload, len)) {
			pr_perror("cannot write image stream");
			w->failed = true;
			return -1;
		}
		return 0;
	}
	struct iovec iov[2] = { { &hdr, sizeof(hdr) }, { (void *)payload, len } };
	if (writev_full(w->fd, iov, 2)) {
		pr_perror("cannot write image stream");
		w->failed = true;
		return -1;
	}
	return 0;
}

static int wemit(struct img_writer *w, uint16_t kind, uint32_t image, uint64_t offset,
		 const void *payload, size_t len)
{
	return wemit_data(w, kind, image, offset, payload, len, false);
}

static int pflush(struct img_writer *w)
{
	size_t len = w->pend_len;

	if (!len)
		return 0;
	w->pend_len = 0;
	return wemit(w, FRAME_PAGES, w->pend_id, w->images[w->pend_id].offset - len, w->pbuf, len);
}

static struct img_writer *writer_new(int fd, img_sink_fn sink, void *arg)
{
	struct img_writer *w = xzalloc(sizeof(*w));
	char head[sizeof(STASIS_STREAM_TAG) + 4];
	uint32_t ver = STASIS_STREAM_VERSION;

	w->fd = fd;
	w->splice_out = -1;
	w->sink = sink;
	w->sink_arg = arg;
	if (!sink)
		w->buf = xmalloc(WBUF_SIZE);
	memcpy(head, STASIS_STREAM_TAG, sizeof(STASIS_STREAM_TAG));
	memcpy(head + sizeof(STASIS_STREAM_TAG), &ver, 4);
	wemit(w, FRAME_HEAD, 0, 0, head, sizeof(head));
	return w;
}

struct img_writer *imgw_open(int fd)
{
	return writer_new(fd, NULL, NULL);
}

struct img_writer *imgw_open_sink(img_sink_fn sink, void *arg)
{
	return writer_new(-1, sink, arg);
}

static int image_id(struct img_writer *w, const char *image, uint32_t *id)
{
	int64_t i = name_index_find(&w->index, w->images, sizeof(*w->images), image);

	if (i >= 0) {
		*id = i;
		return 0;
	}
	if (!img_name_valid(image) || w->nr_images >= STASIS_MAX_IMAGES) {
		pr_err("invalid image name '%s'", image);
		return -1;
	}
	if (pflush(w))
		return -1;
	w->images = xrealloc(w->images, (w->nr_images + 1) * sizeof(*w->images));
	w->images[w->nr_images] = (struct img_name){ xstrdup(image), 0 };
	name_index_add(&w->index, w->images, sizeof(*w->images), w->nr_images);
	*id = w->nr_images++;
	return wemit(w, FRAME_IMAGE, *id, 0, image, strlen(image));
}

int imgw_record_raw(struct img_writer *w, const char *image, const void *buf, size_t len)
{
	uint32_t id;

	if (image_id(w, image, &id) || pflush(w))
		return -1;
	return wemit(w, FRAME_RECORD, id, 0, buf, len);
}

int imgw_record(struct img_writer *w, const char *image, const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t stackbuf[4096], *buf = len <= sizeof(stackbuf) ? stackbuf : xmalloc(len);
	int ret;

	protobuf_c_message_pack(msg, buf);
	ret = imgw_record_raw(w, image, buf, len);
	if (buf != stackbuf)
		free(buf);
	return ret;
}

static int pages_data(struct img_writer *w, const char *image, const void *data, size_t len,
		      bool stable)
{
	uint32_t id;

	if (image_id(w, image, &id))
		return -1;
	if (w->pend_len && w->pend_id != id && pflush(w))
		return -1;
	while (len) {
		uint64_t off = w->images[id].offset;
		size_t room = STASIS_PAGE_FRAME_SPAN - off % STASIS_PAGE_FRAME_SPAN;
		size_t chunk = room < len ? room : len;

		if (!w->pend_len && chunk == room) {
			/* up to the frame's end: straight out, without a copy */
			if (wemit_data(w, FRAME_PAGES, id, off, data, chunk, stable))
				return -1;
		} else {
			if (!w->pbuf)
				w->pbuf = xmalloc(STASIS_PAGE_FRAME_SPAN);
			memcpy(w->pbuf + w->pend_len, data, chunk);
			w->pend_len += chunk;
			w->pend_id = id;
		}
		w->images[id].offset += chunk;
		if (chunk == room && pflush(w))
			return -1;
		data = (const char *)data + chunk;
		len -= chunk;
	}
	return 0;
}

int imgw_pages(struct img_writer *w, const char *image, const void *data, size_t len)
{
	return pages_data(w, image, data, len, false);
}

int imgw_pages_stable(struct img_writer *w, const char *image, const void *data, size_t len)
{
	return pages_data(w, image, data, len, true);
}

int imgw_frame(struct img_writer *w, const struct img_frame *f)
{
	uint32_t id;

	switch (f->hdr.kind) {
	case FRAME_HEAD:
	case FRAME_TRAILER:
		return 0; /* the writer makes its own */
	case FRAME_IMAGE:
		/* declared here, so that an image without frames is kept */
		return image_id(w, f->image, &id);
	case FRAME_RECORD:
		return imgw_record_raw(w, f->image, f->data, f->hdr.len);
	case FRAME_PAGES:
		if (image_id(w, f->image, &id) || pflush(w))
			return -1;
		w->images[id].offset = f->hdr.offset + f->hdr.len;
		return wemit_data(w, FRAME_PAGES, id, f->hdr.offset, f->data, f->hdr.len,
				  f->stable);
	default:
		if (image_id(w, f->image, &id) || pflush(w))
			return -1;
		return wemit(w, f->hdr.kind, id, f->hdr.offset, f->data, f->hdr.len);
	}
}

int imgw_flush(struct img_writer *w)
{
	return pflush(w) || (!w->sink && wflush(w)) ? -1 : 0;
}

int imgw_finish(struct img_writer *w)
{
	uint64_t count;

	if (pflush(w))
		return -1;
	count = w->seq;
	if (wemit(w, FRAME_TRAILER, 0, 0, &count, sizeof(count)))
		return -1;
	return wflush(w);
}

uint64_t imgw_bytes(const struct img_writer *w)
{
	return w->bytes + (w->pend_len ? sizeof(struct stasis_frame_hdr) + w->pend_len : 0);
}

void imgw_free(struct img_writer *w)
{
	if (!w)
		return;
	for (uint32_t i = 0; i < w->nr_images; i++)
		free(w->images[i].name);
	free(w->images);
	name_index_free(&w->index);
	free(w->buf);
	free(w->pbuf);
	free(w);
}

/* ---- reader ---- */

struct img_reader *imgr_open(int fd, const char *what)
{
	struct img_reader *r = xzalloc(sizeof(*r));

	r->fd = fd;
	r->what = xstrdup(what);
	return r;
}

struct img_reader *imgr_open_link(int fd, const char *what)
{
	struct img_reader *r = imgr_open(fd, what);

	r->link = true;
	return r;
}

bool imgr_empty(const struct img_reader *r)
{
	return r->empty;
}

void imgr_set_room(struct img_reader *r, img_room_fn room, void *arg)
{
	r->room = room;
	r->room_arg = arg;
}

/* A frame at most, and as much again on its way. */
#define READAHEAD_RING (2 * (STASIS_FRAME_MAX + (64u << 10)))

void imgr_readahead(struct img_reader *r)
{
	if (!r->link && !r->ra && !r->done)
		r->ra = readahead_start(r->fd, READAHEAD_RING);
	if (r->ra)
		pr_debug("%s: reading the stream ahead (a ring of %u KiB)", r->what,
			 READAHEAD_RING >> 10);
}

/* len bytes of the input: into buf, or, read ahead, wherever they are in
 * the ring (*p); as read_full. */
static ssize_t rread(struct img_reader *r, void *buf, void **p, size_t len)
{
	ssize_t n;

	if (!r->ra) {
		*p = buf;
		return read_full(r->fd, buf, len);
	}
	n = readahead_take(r->ra, p, len);
	if (n > 0 && buf) {
		memcpy(buf, *p, n);
		*p = buf;
	}
	return n;
}

void imgr_free(struct img_reader *r)
{
	if (!r)
		return;
	readahead_stop(r->ra);
	for (uint32_t i = 0; i < r->nr_images; i++)
		free(r->images[i]);
	free(r->images);
	name_index_free(&r->index);
	free(r->buf);
	free(r->what);
	free(r);
}

#define rerr(r, fmt, ...) pr_err("%s: " fmt, (r)->what, ##__VA_ARGS__)

int imgr_next(struct img_reader *r, struct img_frame *f)
{
	struct stasis_frame_hdr *h = &f->hdr;
	ssize_t n;
	void *at;

	if (r->done)
		return 0;
	if (r->ra)
		readahead_release(r->ra); /* the last frame's data is done with */
	n = rread(r, h, &at, sizeof(*h));
	if (n < 0) {
		rerr(r, "read failed: %s", strerror(errno));
		return -1;
	}
	if (n == 0 && !r->head_seen && r->link) {
		r->empty = r->done = true;
		return 0;
	}
	if (n == 0 && !r->head_seen) {
		rerr(r, "empty input, not a stasis image stream");
		return -1;
	}
	if (n < (ssize_t)sizeof(*h)) {
		uint32_t magic = STASIS_FRAME_MAGIC;

		/* a few bytes of something else are not a cut-off checkpoint */
		if (!r->head_seen && memcmp(h, &magic, n < 4 ? n : 4)) {
			rerr(r, "not a stasis image stream");
			return -1;
		}
		rerr(r, "truncated checkpoint: stream ends after frame %llu without a trailer",
		     (unsigned long long)r->seq);
		return -1;
	}
	if (h->magic != STASIS_FRAME_MAGIC) {
		rerr(r, "%s at frame %llu (bad frame magic)",
		     r->head_seen ? "corrupted stream" : "not a stasis image stream",
		     (unsigned long long)r->seq);
		return -1;
	}
	if (h->seq != r->seq) {
		rerr(r, "corrupted stream: frame %llu carries sequence number %llu",
		     (unsigned long long)r->seq, (unsigned long long)h->seq);
		return -1;
	}
	if (h->len > STASIS_FRAME_MAX) {
		rerr(r, "corrupted stream: frame %llu claims %u bytes", (unsigned long long)h->seq,
		     h->len);
		return -1;
	}
	if (h->len > r->buf_size && !r->ra) {
		r->buf_size = h->len < 65536 ? 65536 : h->len;
		free(r->buf);
		r->buf = xmalloc(r->buf_size);
	}
	f->data = NULL;
	f->stable = false; /* the reader's buffer is read into again */
	/* checked below like any page frame: this only says where it goes */
	if (r->room && h->kind == FRAME_PAGES && h->len && h->image < r->nr_images)
		f->data = r->room(r->room_arg, r->images[h->image], h->offset, h->len);
	if (!f->data && !r->ra)
		f->data = r->buf;
	n = rread(r, f->data, &at, h->len);
	f->data = at;
	if (n < 0) {
		rerr(r, "read failed: %s", strerror(errno));
		return -1;
	}
	if (n < h->len) {
		rerr(r, "truncated checkpoint: frame %llu is cut short", (unsigned long long)h->seq);
		return -1;
	}
	f->image = NULL;
	r->seq++;

	if (!r->head_seen) {
		uint32_t ver;

		if (h->kind != FRAME_HEAD || h->len != sizeof(STASIS_STREAM_TAG) + 4 ||
		    memcmp(f->data, STASIS_STREAM_TAG, sizeof(STASIS_STREAM_TAG))) {
			rerr(r, "not a stasis image stream");
			return -1;
		}
		memcpy(&ver, (const char *)f->data + sizeof(STASIS_STREAM_TAG), 4);
		if (ver != STASIS_STREAM_VERSION) {
			rerr(r, "unsupported stream version %u (this is %u)", ver,
			     STASIS_STREAM_VERSION);
			return -1;
		}
		r->head_seen = true;
		return 1;
	}

	switch (h->kind) {
	case FRAME_IMAGE: {
		char name[STASIS_IMAGE_NAME_MAX];

		if (h->image != r->nr_images || h->len == 0 || h->len >= sizeof(name)) {
			rerr(r, "corrupted stream: bad image declaration at frame %llu",
			     (unsigned long long)h->seq);
			return -1;
		}
		memcpy(name, f->data, h->len);
		name[h->len] = 0;
		if (strlen(name) != h->len || !img_name_valid(name)) {
			rerr(r, "corrupted stream: invalid image name at frame %llu",
			     (unsigned long long)h->seq);
			return -1;
		}
		if (name_index_find(&r->index, r->images, sizeof(char *), name) >= 0) {
			rerr(r, "corrupted stream: image %s declared twice", name);
			return -1;
		}
		if (r->nr_images >= STASIS_MAX_IMAGES) {
			rerr(r, "too many images");
			return -1;
		}
		r->images = xrealloc(r->images, (r->nr_images + 1) * sizeof(char *));
		r->images[r->nr_images] = xstrdup(name);
		name_index_add(&r->index, r->images, sizeof(char *), r->nr_images++);
		f->image = r->images[h->image];
		return 1;
	}
	case FRAME_TRAILER: {
		uint64_t count;

		if (h->len != sizeof(count)) {
			rerr(r, "corrupted stream: bad trailer");
			return -1;
		}
		memcpy(&count, f->data, sizeof(count));
		if (count != h->seq) {
			rerr(r, "truncated checkpoint: trailer counts %llu frames, %llu arrived",
			     (unsigned long long)count, (unsigned long long)h->seq);
			return -1;
		}
		r->done = true;
		/* Anything after the trailer was appended by someone else
		 * (or, in a chain, is the next link's). */
		char extra;
		void *extra_at;

		if (!r->link && rread(r, &extra, &extra_at, 1) == 1) {
			rerr(r, "corrupted stream: data after the trailer");
			return -1;
		}
		return 0;
	}
	case FRAME_HEAD:
		rerr(r, "corrupted stream: second stream head at frame %llu",
		     (unsigned long long)h->seq);
		return -1;
	default:
		if (h->kind > 255 || h->image >= r->nr_images) {
			rerr(r, "corrupted stream: frame %llu has kind %u, image %u",
			     (unsigned long long)h->seq, h->kind, h->image);
			return -1;
		}
		f->image = r->images[h->image];
		if (h->kind == FRAME_PAGES && !img_is_pages(f->image)) {
			rerr(r, "corrupted stream: page data in record image %s", f->image);
			return -1;
		}
		if (h->kind == FRAME_RECORD && img_is_pages(f->image)) {
			rerr(r, "corrupted stream: record in page image %s", f->image);
			return -1;
		}
		return 1;
	}
}
