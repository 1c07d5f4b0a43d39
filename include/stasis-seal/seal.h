/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Sealed checkpoints: the encrypting and decrypting core of stasis-seal, in
 * the static library stasis-seal-core, for stasis-seal and for
 * `stasis-serialize show --tls-key`. docs/seal.md describes the format.
 *
 * Both directions work frame by frame, with memory bounded by the frame
 * size and the number of images (plus, when opening, the authentication
 * tags that arrive ahead of their page frames). Errors are logged with
 * pr_err, one line naming the image and the record or frame.
 */
#ifndef STASIS_SEAL_H
#define STASIS_SEAL_H

#include <stdbool.h>

#include "stasis-image/image.h"

#define SEAL_DEFAULT_CERT "/etc/pki/stasis/cert.pem"
#define SEAL_DEFAULT_KEY  "/etc/pki/stasis/private/key.pem"

/* Images that only a sealed stream holds: cipher, seal, pagetags-*. */
bool seal_image_reserved(const char *name);

/* ---- encrypt ---- */

struct seal_enc;

/*
 * Fresh keys, wrapped to each certificate (PEM or DER files), and the
 * cipher image written to w. threads: page-encryption threads besides the
 * caller (0: none).
 */
struct seal_enc *seal_enc_create(const char *const *certs, int nr_certs, struct img_writer *w,
				 int threads);
/* One frame of the plaintext stream (HEAD and TRAILER are ignored). The
 * frame's data may be overwritten. */
int seal_enc_put(struct seal_enc *e, struct img_frame *f);
/* After the last frame: writes the seal summary. The caller then writes
 * the trailer with imgw_finish(). */
int seal_enc_finish(struct seal_enc *e);
void seal_enc_free(struct seal_enc *e);
/* A stream whose page frames come at any offset, as a lazy page server
 * sends them (include/stasis/lazy.h): each page may still come only once,
 * since its offset is its tweak and its tag's nonce. */
void seal_enc_any_order(struct seal_enc *e);
/*
 * Page frames sealed later, in place, by seal_enc_page_hook (an
 * img_page_hook_fn), which the page store (imgunpack_page_hook) runs on
 * its own thread on the page data just before writing it; flush(arg) hands
 * it all the data taken so far (seal_enc_finish waits for every tag). The
 * page frames pass seal_enc_put unchanged; their tags are written as they
 * are made, after them: for a store of one file per image, not a stream.
 * The store's threads must be stopped before seal_enc_free.
 */
void seal_enc_in_place(struct seal_enc *e, void (*flush)(void *arg), void *arg);
int seal_enc_page_hook(void *e, const char *image, uint64_t offset, void *data, size_t len);

/* ---- open ---- */

/*
 * Receives the plaintext checkpoint: FRAME_IMAGE declarations, FRAME_RECORD
 * and FRAME_PAGES frames (hdr.kind, hdr.len, hdr.offset, image and data
 * are set; hdr.seq and hdr.image are those of the sealed input). A frame is
 * handed out only once it has been verified; the data is valid during the
 * call. Returns 0, or -1 to stop (with its own message).
 */
typedef int (*seal_out_fn)(void *arg, const struct img_frame *f);

/* Also hand out the images of the sealing itself: cipher (as stored),
 * pagetags-* (as stored) and seal (decrypted). For show. */
#define SEAL_OPEN_META 1u
/* Page frames at any offset (seal_enc_any_order), each still matched to
 * the tag that comes before it. */
#define SEAL_OPEN_ANY_ORDER 2u

struct seal_open;

/*
 * Loads the private key (PEM or DER); NULL, with "cannot load private key
 * PATH: reason" logged, if it cannot.
 */
struct seal_open *seal_open_create(const char *key_path, unsigned flags, seal_out_fn out,
				   void *arg);
/*
 * One frame of the sealed checkpoint, from a stream or made up from a
 * directory's files (then hdr.seq and hdr.image may be 0): the first must
 * declare the cipher image and the second be its record. The frame's data
 * may be overwritten. HEAD frames are ignored; do not pass the trailer.
 */
int seal_open_put(struct seal_open *o, struct img_frame *f);
/* Page frames are checked and decrypted by this many threads besides the
 * caller (default 0); set before the first frame. */
void seal_open_threads(struct seal_open *o, int threads);
/* The opened frames go to w, whose reader copies (imgw_reader_copies): the
 * page chunks of seal_open_put_dir are read into again once it has taken
 * them (img_pages_rd_recycle). */
void seal_open_recycle(struct seal_open *o, const struct img_writer *w);
/* At the end of the input: is everything there, and nothing more? */
int seal_open_finish(struct seal_open *o);
void seal_open_free(struct seal_open *o);

/* Every image of a sealed directory, in the order of stasis-serialize pack
 * (then call seal_open_finish). */
int seal_open_put_dir(struct seal_open *o, const char *dir);
/* 1 when dir holds a sealed checkpoint (cipher.img), 0 when not, -1 on error. */
int seal_dir_sealed(const char *dir);

/* A whole sealed stream read from fd ('what' names it in messages). */
int seal_open_fd(int fd, const char *what, const char *key_path, unsigned flags, seal_out_fn out,
		 void *arg);
/* A whole sealed directory, read in the order of stasis-serialize pack. */
int seal_open_dir(const char *dir, const char *key_path, unsigned flags, seal_out_fn out,
		  void *arg);

#endif
