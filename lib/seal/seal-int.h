/* SPDX-License-Identifier: GPL-2.0 */
/* Inside stasis-seal-core: the keys and how they are wrapped (keys.c), and
 * the parts of the core. */
#ifndef STASIS_SEAL_INT_H
#define STASIS_SEAL_INT_H

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stdint.h>

#include "stasis/nameidx.h"
#include "stasis-image/image.h"
#include "stasis-seal/seal.h"

#define SEAL_VERSION	   1
#define SEAL_RECORD_CIPHER "CHACHA20-POLY1305"
#define SEAL_PAGE_CIPHER   "AES-256-XTS"
#define SEAL_PAGE_TAG	   "AES-256-GMAC"
#define SEAL_KDF	   "HKDF-SHA256"
#define SEAL_WRAP_RSA	   "RSA-PKCS1-V1.5"
#define SEAL_WRAP_ECDH	   "ECDH-P256"

#define SEAL_TAG_LEN	16
#define SEAL_ID_LEN	16
#define SEAL_DIGEST_LEN 32

/* The keys of one checkpoint: 128 bytes, wrapped as one blob. */
struct seal_keys {
	uint8_t rec[32]; /* ChaCha20-Poly1305 master key of the records */
	uint8_t xts[64]; /* AES-256-XTS key of the pages */
	uint8_t mac[32]; /* AES-256-GMAC master key of the page tags */
};
_Static_assert(sizeof(struct seal_keys) == 128, "the key blob is 128 bytes");

int seal_keys_new(struct seal_keys *k);

/* Adds a recipient for the certificate in cert_path to c (logs errors). */
int seal_wrap(Stasis__SealCipher *c, const char *cert_path, const struct seal_keys *k);
void seal_cipher_free_recipients(Stasis__SealCipher *c);

struct seal_privkey;
struct seal_privkey *seal_privkey_load(const char *path);
void seal_privkey_free(struct seal_privkey *pk);
/* The keys of c that pk opens; logs why not (no matching recipient: the
 * fingerprints it is sealed for). */
int seal_unwrap(struct seal_privkey *pk, const Stasis__SealCipher *c, struct seal_keys *k);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void seal_hex(char *out, const uint8_t *in, size_t n);

/* ---- the core, a file a job: the image table (table.c), the ciphers
 * (cipher.c), the worker pool (pool.c), sealing (encrypt.c), opening
 * (open.c), whole streams and directories (dir.c) ---- */

/* Page frames held while their tag has not arrived (opening). */
#define SEAL_HOLD_MAX (64u << 20)
/* Tags that arrived before their page frames (opening). */
#define SEAL_TAGS_MAX (1u << 22)
/* Largest part of the seal summary. */
#define SEAL_SUMMARY_PART (1u << 20)
#define SEAL_RECORD_MAX	  (STASIS_FRAME_MAX - SEAL_TAG_LEN)

enum img_kind { IK_RECORDS, IK_PAGES, IK_CIPHER, IK_TAGS, IK_SUMMARY };

struct ptag {
	uint64_t offset;
	uint32_t len;
	uint8_t tag[SEAL_TAG_LEN];
};

struct simg {
	char *name;
	enum img_kind kind;
	bool declared;
	uint64_t records;
	uint64_t page_bytes;
	/* records, summary: ChaCha20-Poly1305 under the image's record key;
	 * pages: AES-256-GCM (used as GMAC) under the image's tag key */
	gnutls_aead_cipher_hd_t aead;
	uint8_t subkey[32];
	bool has_subkey;
	uint8_t tweak[8]; /* pages: image half of the XTS tweak */
	/* pages, opening: tags not used yet, in order */
	struct ptag *tags;
	size_t tag_head, tag_nr, tag_cap;
	uint64_t tag_next;
	/* from the seal summary (opening) */
	bool expected;
	uint64_t exp_records, exp_page_bytes;
};

/* The images of a checkpoint, found by name. */
struct itable {
	struct simg **v;
	char **names; /* v[i]->name, what the index is over */
	uint32_t nr;
	struct name_index index;
};

struct seal_ctx {
	struct seal_keys keys;
	uint8_t digest[SEAL_DIGEST_LEN]; /* SHA-256 of the cipher record */
	gnutls_cipher_hd_t xts;
	struct itable images;
	uint8_t *buf; /* record en/decryption */
	size_t buf_size;
};

/* table.c: the image table, and how images are named */
struct simg *seal_image_find(const struct itable *t, const char *name);
/* The image, added when new; NULL (logged) past the limit. */
struct simg *seal_image_get(struct itable *t, const char *name);
void seal_images_free(struct itable *t);
bool seal_page_frame_ok(const struct img_frame *f);
/* "pagetags-N" of "pages-N" (malloc'ed) */
char *seal_tags_name(const char *pages);

/* cipher.c: the keys of an image, records and pages sealed and opened */
int seal_image_keys(struct seal_ctx *c, struct simg *img);
/* The record idx of img, sealed or opened into c->buf (*out_len bytes). */
int seal_record_seal(struct seal_ctx *c, struct simg *img, uint64_t idx, const void *in, size_t len,
		     size_t *out_len);
int seal_record_open(struct seal_ctx *c, struct simg *img, uint64_t idx, const void *in, size_t len,
		     size_t *out_len);
/* The tag of a page frame, made or verified. */
int seal_page_tag(const struct seal_ctx *c, gnutls_aead_cipher_hd_t aead, const struct simg *img,
		  uint64_t offset, const void *data, uint32_t len, uint8_t tag[SEAL_TAG_LEN],
		  bool verify);
int seal_pages_xts(gnutls_cipher_hd_t xts, const struct simg *img, uint64_t offset, uint8_t *data,
		   uint32_t len, bool decrypt);
int seal_ctx_start(struct seal_ctx *c);
void seal_ctx_free(struct seal_ctx *c);

/*
 * pool.c: page frames, spread over threads. A page frame to seal (XTS, then its tag) or to open (check the tag, then
 * XTS). With threads, frames are copied into a ring of jobs that the
 * workers take in order; the caller hands the results out strictly in
 * order, and never one whose check failed.
 */
struct job {
	struct simg *img;
	struct stasis_frame_hdr hdr;
	uint8_t *data;
	uint8_t tag[SEAL_TAG_LEN]; /* sealing: made; opening: expected */
	int ret;
	bool done;
	bool stable; /* data is the caller's, never written again (img_frame.stable) */
};

typedef int (*job_emit_fn)(void *owner, struct job *j);

/* One job done on this thread, with these handles: 0, or -1. */
int seal_job_run(const struct seal_ctx *c, gnutls_cipher_hd_t xts, gnutls_aead_cipher_hd_t aead,
		 struct job *j, bool open);

struct pool;
struct pool *seal_pool_new(struct seal_ctx *c, int nth, bool open, job_emit_fn emit, void *owner);
void seal_pool_free(struct pool *p);
/* Hands out the jobs done, in order (all: waits for every one). */
int seal_pool_flush(struct pool *p, bool all);
/* One page frame of img (whose keys are set up); data may be overwritten. */
int seal_pool_submit(struct pool *p, struct simg *img, const struct stasis_frame_hdr *h,
		     uint8_t *data, const uint8_t *tag, bool stable);

/* open.c, for dir.c: the opening failed */
void seal_open_fail(struct seal_open *o);
/* the writer of seal_open_recycle, or NULL */
const struct img_writer *seal_open_recycled(const struct seal_open *o);

#endif
