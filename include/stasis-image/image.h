/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The stasis image stream: a sequence of frames, each a fixed 32-byte
 * header and a payload. docs/format.md describes it for humans; this is the
 * only code that knows the byte layout.
 */
#ifndef STASIS_IMAGE_H
#define STASIS_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include "stasis.pb-c.h"

#define STASIS_FRAME_MAGIC 0x52465453u /* "STFR" little-endian */
#define STASIS_STREAM_VERSION 1
#define STASIS_STREAM_TAG "STASIS-STREAM"

/* Largest payload a reader accepts; record frames are far smaller. */
#define STASIS_FRAME_MAX (4u << 20)
/* Page frames never cross a multiple of this image offset, so frame
 * boundaries depend only on the image's content and dir <-> stream
 * conversion is exact. */
#define STASIS_PAGE_FRAME_SPAN (256u << 10)
#define STASIS_MAX_IMAGES 65536
#define STASIS_IMAGE_NAME_MAX 64

enum stasis_frame_kind {
	FRAME_HEAD = 1,	   /* payload: STASIS_STREAM_TAG + u32 version */
	FRAME_IMAGE = 2,   /* declares image id -> name (payload) */
	FRAME_RECORD = 3,  /* one protobuf message of the image */
	FRAME_PAGES = 4,   /* raw page data at 'offset' in the image */
	FRAME_TRAILER = 5, /* payload: u64 number of frames before it */
};

struct stasis_frame_hdr {
	uint32_t magic;
	uint16_t kind;
	uint16_t flags;
	uint32_t image;
	uint32_t len;
	uint64_t seq;
	uint64_t offset;
} __attribute__((packed));

_Static_assert(sizeof(struct stasis_frame_hdr) == 32, "frame header is 32 bytes");

/* One frame as the reader hands it out; data is valid until the next read. */
struct img_frame {
	struct stasis_frame_hdr hdr;
	const char *image; /* name of hdr.image, NULL for HEAD/TRAILER */
	void *data;
	/* data is never written again (it lives in a chunk of img_pages_next
	 * that is unmapped, not reused): a writer may pass it by reference */
	bool stable;
};

struct img_writer;
struct img_reader;

/* Writer: frames go to fd as they are made (no whole-image buffering). */
struct img_writer *imgw_open(int fd);
/* Takes one frame (data valid during the call); non-zero stops the writer. */
typedef int (*img_sink_fn)(void *arg, const struct img_frame *f);
/* A writer that hands each frame to sink instead of writing it to an fd
 * (HEAD and TRAILER included, with image NULL). */
struct img_writer *imgw_open_sink(img_sink_fn sink, void *arg);
int imgw_record(struct img_writer *w, const char *image, const ProtobufCMessage *msg);
int imgw_record_raw(struct img_writer *w, const char *image, const void *buf, size_t len);
/* Appends len bytes of page data to image (split at STASIS_PAGE_FRAME_SPAN). */
int imgw_pages(struct img_writer *w, const char *image, const void *data, size_t len);
/* The same for data that is never written again (img_frame.stable). */
int imgw_pages_stable(struct img_writer *w, const char *image, const void *data, size_t len);
/*
 * The reader of w's pipe takes the data out with read(2) (a copy), never
 * with splice(2) or tee(2): once it has taken the bytes of a page buffer
 * that went in by reference, the pipe holds none of its pages, and the
 * buffer may be written again (img_pages_rd_recycle). imgw_written: bytes
 * written to the fd so far; imgw_taken: of those, how many the reader has
 * taken (0 where that cannot be known).
 */
void imgw_reader_copies(struct img_writer *w);
bool imgw_reader_copies_set(const struct img_writer *w);
uint64_t imgw_written(const struct img_writer *w);
uint64_t imgw_taken(const struct img_writer *w);
/* Until the reader has taken the first end bytes (imgw_written) out of
 * the pipe, or at once if nothing went in by reference. 0, or -1 with
 * errno EPIPE once the reader is gone. */
int imgw_wait_taken(const struct img_writer *w, uint64_t end);
/* Writes a frame exactly as given (except seq, which the writer assigns):
 * for filters like seal that pass frames through. */
int imgw_frame(struct img_writer *w, const struct img_frame *f);
/* Writes out every frame made so far (a stream read as it comes). */
int imgw_flush(struct img_writer *w);
/* Writes the trailer and flushes; the fd stays open. */
int imgw_finish(struct img_writer *w);
void imgw_free(struct img_writer *w);
uint64_t imgw_bytes(const struct img_writer *w);

/* Reader: 'what' names the input in error messages. */
struct img_reader *imgr_open(int fd, const char *what);
/* 1: a frame is in *f; 0: clean end after a valid trailer; -1: error (logged). */
int imgr_next(struct img_reader *r, struct img_frame *f);
void imgr_free(struct img_reader *r);
/* Where the payload of a page frame of image at offset should be read, or
 * NULL for the reader's own buffer: a sink that copies page data anyway
 * gives its own buffer, and the data is copied once less. */
typedef void *(*img_room_fn)(void *arg, const char *image, uint64_t offset, size_t len);
void imgr_set_room(struct img_reader *r, img_room_fn room, void *arg);
/* From the next imgr_next on (frames are read whole, so the input is at a
 * frame's start), a thread reads the input ahead, into a ring
 * the frames are then given from (with a room, copied out of it), so that
 * the copy out of the pipe goes on beside the caller's work. It may read
 * past the trailer (not for a link of a chain); where it cannot start,
 * the input is read as before. */
void imgr_readahead(struct img_reader *r);
/* A reader of one link of a chain stream (links concatenated, each a whole
 * stream): nothing after its trailer is read, and an input that ends where
 * the link would start is a clean end (imgr_next 0, imgr_empty true). */
struct img_reader *imgr_open_link(int fd, const char *what);
bool imgr_empty(const struct img_reader *r);

/* Record type of the idx-th record of an image (by name), NULL if unknown. */
const ProtobufCMessageDescriptor *img_record_desc(const char *image, unsigned idx);
/* Page images hold raw pages, everything else protobuf records. */
bool img_is_pages(const char *image);
bool img_name_valid(const char *name);
/* False for images a directory holds that are not part of the checkpoint
 * (stats-restore, written by a restore): pack and seal leave them out. */
bool img_in_checkpoint(const char *name);

/*
 * Memory shared copy-on-write between a parent and child. The restorer
 * forks a child from its restored parent when this says so, and a child
 * mapping for which img_vma_inherited holds with a parent's mapping keeps
 * what it inherits; collect only marks pages in_parent under both.
 */
bool img_forks_from_parent(const Stasis__PstreeEntry *task, const Stasis__PstreeEntry *parent);
bool img_vma_inherited(const Stasis__Vma *child, const Stasis__Vma *parent);

/* A mapping whose pages a lazy restore may fill after the task runs
 * (private anonymous memory, not locked, sealed, droppable, hugetlb or a
 * program's own userfaultfd's), and whether vaddr..vaddr+len lies in such
 * mappings of mm only (serialize/lazy.c). */
bool img_vma_lazy(const Stasis__Vma *v);
bool img_run_lazy(const Stasis__MmEntry *mm, uint64_t vaddr, uint64_t len);

/* Directory form: NAME.img per image. */
#define STASIS_IMG_MAGIC "STASIMG1"
/* "NAME.img" -> NAME, when fname names an image file. */
bool img_file_name(const char *fname, char name[STASIS_IMAGE_NAME_MAX]);
struct img_dir_writer;
struct img_dir_writer *imgdir_create(const char *dir);
int imgdir_put(struct img_dir_writer *d, const struct img_frame *f);
/*
 * Reading a page image with O_DIRECT, where the file system takes it: the
 * images of a dump are written past the page cache, and filling the page
 * cache with them again cost 4 times the disk's time on these VMs (fresh
 * memory is slow to come by). img_pages_read: like read_full, into a
 * page-aligned buffer, len a multiple of 4 KiB.
 */
#define IMG_PAGES_CHUNK (4u << 20)
void img_pages_direct(int fd);
ssize_t img_pages_read(int fd, void *buf, size_t len);
/*
 * A page image read ahead by a thread of its own, IMG_PAGES_CHUNK bytes at
 * a time (img_pages_direct, img_pages_read): the disk reads the next
 * chunks while the caller sends, or opens, this one. img_pages_next: the
 * next chunk (its length; 0 at the end, -1 with errno on a read error),
 * valid until the next call. img_pages_rd_stable: the chunks are unmapped
 * after that call, not reused: their data is never written again
 * (img_frame.stable), and their pages can go into a pipe by reference.
 */
struct img_pages_rd;
struct img_pages_rd *img_pages_rd_open(int fd);
/*
 * The stable chunks go to w, whose reader copies (imgw_reader_copies):
 * a chunk the reader has taken whole is read into again instead of a
 * fresh mapping, which the kernel would clear first. No-op for a writer
 * without imgw_reader_copies, or NULL.
 */
void img_pages_rd_recycle(struct img_pages_rd *rd, const struct img_writer *w);
ssize_t img_pages_next(struct img_pages_rd *rd, void **data);
bool img_pages_rd_stable(const struct img_pages_rd *rd);
void img_pages_rd_free(struct img_pages_rd *rd);
/* An img_room_fn: room in the page write buffers for the next page frame
 * of image; imgdir_put of that frame with its data there copies nothing. */
void *imgdir_page_room(void *d, const char *image, uint64_t offset, size_t len);
/*
 * The page data of d passed through fn just before it is written, on a
 * thread of its own (stasis-seal seals it there, in place): whole page
 * frames, in stream order, one run of an image at a time. A failure is
 * said by fn; nothing more is written and imgdir_finish fails. Set before
 * the first page frame.
 */
typedef int (*img_page_hook_fn)(void *arg, const char *image, uint64_t offset, void *data,
				size_t len);
void imgdir_page_hook(struct img_dir_writer *d, img_page_hook_fn fn, void *arg);
/* The page data taken so far handed on to the hook (and the disk). */
void imgdir_page_flush(struct img_dir_writer *d);
/* fsyncs every file and the directory. */
int imgdir_finish(struct img_dir_writer *d);
void imgdir_free(struct img_dir_writer *d);
/*
 * A checkpoint stored safely: frames go to DIR/.stasis-unpack.PID, and
 * imgunpack_commit fsyncs them and moves them into DIR (dropping what an
 * older checkpoint there has and this one has not). Until then DIR is left
 * as it was; imgunpack_free without a commit removes the staged files.
 */
struct img_unpack;
struct img_unpack *imgunpack_open(const char *dir);
/* An img_sink_fn: takes any frame of a plaintext or sealed stream. */
int imgunpack_put(void *unpack, const struct img_frame *f);
/* An img_room_fn for a reader whose frames go to imgunpack_put. */
void *imgunpack_page_room(void *unpack, const char *image, uint64_t offset, size_t len);
/* imgdir_page_hook and imgdir_page_flush of the directory being stored. */
void imgunpack_page_hook(struct img_unpack *u, img_page_hook_fn fn, void *arg);
void imgunpack_page_flush(struct img_unpack *u);
int imgunpack_commit(struct img_unpack *u);
void imgunpack_free(struct img_unpack *u);
/* "OK\n" on the acknowledgement fd (none when fd < 0): the checkpoint is
 * complete and durable. */
int img_ack(int fd);
/* qsort order of image names (char *) in which pack streams a directory:
 * cipher, inventory, pstree, other records by name, pages-N by N, stats-*. */
int img_pack_cmp(const void *a, const void *b);
/* Streams every image of dir to w in canonical order. */
int imgdir_pack(const char *dir, struct img_writer *w);
/* The same for a restore with --lazy-pages: the page data the lazy-pages
 * daemon will read from dir itself is not streamed (its runs are marked
 * lazy), so that the restored tree runs without waiting for it. */
int imgdir_pack_lazy(const char *dir, struct img_writer *w);
/* The same for one link of an iterative chain as it is, its pages left to
 * its parent unresolved (stasis-serialize pack --chain). */
int imgdir_pack_link(const char *dir, struct img_writer *w);

#endif
