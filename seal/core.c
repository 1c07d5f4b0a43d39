// SPDX-License-Identifier: GPL-2.0
/*
 * Sealing and opening a checkpoint frame by frame (docs/seal.md has the
 * format; this comment the reasons).
 *
 * Only what survives stasis-serialize unpack/pack is bound into the
 * cryptography: the image name, the index of a record within its image,
 * the offset of a page frame within its image, and the frame kind. Frame
 * sequence numbers, image ids and the order of the images are not: pack
 * rewrites them. Dropped or appended records and frames at the end of an
 * image are caught by the seal summary (the last record of the stream,
 * sealed like the others), checked at the end.
 *
 * Records: ChaCha20-Poly1305 under a key derived for each image, nonce =
 * record index. Pages: AES-256-XTS page by page, tweak = page index and
 * image; every page frame has an AES-256-GMAC tag in the pagetags image,
 * written just before the frame. Opening never hands out a byte of a frame
 * before its tag (or AEAD tag) verified.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stasis/fault.h"
#include "stasis/log.h"
#include "stasis/seal.h"
#include "stasis/util.h"

#include "seal-int.h"

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

struct itable {
	struct simg **v;
	uint32_t nr;
	uint32_t *slot; /* index + 1 */
	uint32_t size;
};

struct seal_ctx {
	struct seal_keys keys;
	uint8_t digest[SEAL_DIGEST_LEN]; /* SHA-256 of the cipher record */
	gnutls_cipher_hd_t xts;
	struct itable images;
	uint8_t *buf; /* record en/decryption */
	size_t buf_size;
};

bool seal_image_reserved(const char *name)
{
	return !strcmp(name, "cipher") || !strcmp(name, "seal") || !strncmp(name, "pagetags-", 9);
}

static enum img_kind kind_of(const char *name)
{
	if (!strcmp(name, "cipher"))
		return IK_CIPHER;
	if (!strcmp(name, "seal"))
		return IK_SUMMARY;
	if (!strncmp(name, "pagetags-", 9))
		return IK_TAGS;
	return img_is_pages(name) ? IK_PAGES : IK_RECORDS;
}

/* ---- image table ---- */

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static struct simg *it_find(const struct itable *t, const char *name)
{
	if (!t->size)
		return NULL;
	for (uint32_t h = name_hash(name) & (t->size - 1);; h = (h + 1) & (t->size - 1)) {
		uint32_t v = t->slot[h];

		if (!v)
			return NULL;
		if (!strcmp(t->v[v - 1]->name, name))
			return t->v[v - 1];
	}
}

static void it_put(struct itable *t, uint32_t i)
{
	uint32_t h = name_hash(t->v[i]->name) & (t->size - 1);

	while (t->slot[h])
		h = (h + 1) & (t->size - 1);
	t->slot[h] = i + 1;
}

static struct simg *it_get(struct itable *t, const char *name)
{
	struct simg *img = it_find(t, name);

	if (img)
		return img;
	if (t->nr >= 2 * STASIS_MAX_IMAGES) {
		pr_err("too many images");
		return NULL;
	}
	img = xzalloc(sizeof(*img));
	img->name = xstrdup(name);
	img->kind = kind_of(name);
	t->v = xrealloc(t->v, (t->nr + 1) * sizeof(*t->v));
	t->v[t->nr] = img;
	if ((uint64_t)(t->nr + 1) * 2 > t->size) {
		t->size = t->size ? t->size * 2 : 64;
		free(t->slot);
		t->slot = xzalloc(t->size * sizeof(*t->slot));
		for (uint32_t i = 0; i < t->nr; i++)
			it_put(t, i);
	}
	it_put(t, t->nr++);
	return img;
}

static void it_free(struct itable *t)
{
	for (uint32_t i = 0; i < t->nr; i++) {
		struct simg *img = t->v[i];

		if (img->aead)
			gnutls_aead_cipher_deinit(img->aead);
		gnutls_memset(img->subkey, 0, sizeof(img->subkey));
		free(img->tags);
		free(img->name);
		free(img);
	}
	free(t->v);
	free(t->slot);
	memset(t, 0, sizeof(*t));
}

/* ---- keys of an image ---- */

/* subkey = HKDF-Expand-SHA256(master, label 0 name, 32) */
static int derive(const uint8_t master[32], const char *label, const char *name, uint8_t out[32])
{
	size_t ll = strlen(label) + 1, nl = strlen(name);
	uint8_t info[128];
	gnutls_datum_t key = { (uint8_t *)master, 32 }, inf = { info, ll + nl };

	if (ll + nl > sizeof(info))
		return -1;
	memcpy(info, label, ll);
	memcpy(info + ll, name, nl);
	return gnutls_hkdf_expand(GNUTLS_MAC_SHA256, &key, &inf, out, 32) < 0 ? -1 : 0;
}

static int image_keys(struct seal_ctx *c, struct simg *img)
{
	gnutls_datum_t key = { img->subkey, 32 };
	int ret;

	if (img->aead)
		return 0;
	if (img->kind == IK_PAGES) {
		uint8_t h[32], buf[128];
		size_t nl = strlen(img->name);
		static const char label[] = "stasis-seal xts tweak v1";

		if (derive(c->keys.mac, "stasis-seal page tag v1", img->name, img->subkey))
			goto fail;
		memcpy(buf, label, sizeof(label));
		memcpy(buf + sizeof(label), img->name, nl);
		if (gnutls_hash_fast(GNUTLS_DIG_SHA256, buf, sizeof(label) + nl, h) < 0)
			goto fail;
		memcpy(img->tweak, h, sizeof(img->tweak));
		ret = gnutls_aead_cipher_init(&img->aead, GNUTLS_CIPHER_AES_256_GCM, &key);
	} else {
		if (derive(c->keys.rec, "stasis-seal record v1", img->name, img->subkey))
			goto fail;
		ret = gnutls_aead_cipher_init(&img->aead, GNUTLS_CIPHER_CHACHA20_POLY1305, &key);
	}
	img->has_subkey = true;
	if (ret < 0) {
		img->aead = NULL;
		goto fail;
	}
	return 0;
fail:
	pr_err("image %s: cannot set up its keys", img->name);
	return -1;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = v >> (8 * i);
}

/* kind (2) | index or offset (8) | length (4) | cipher digest (32) | name length (1) | name */
static size_t make_ad(uint8_t *ad, const struct seal_ctx *c, uint16_t kind, uint64_t where,
		      uint32_t len, const char *name)
{
	size_t nl = strlen(name);

	put_le(ad, kind, 2);
	put_le(ad + 2, where, 8);
	put_le(ad + 10, len, 4);
	memcpy(ad + 14, c->digest, SEAL_DIGEST_LEN);
	ad[14 + SEAL_DIGEST_LEN] = nl;
	memcpy(ad + 15 + SEAL_DIGEST_LEN, name, nl);
	return 15 + SEAL_DIGEST_LEN + nl;
}

#define AD_MAX (15 + SEAL_DIGEST_LEN + STASIS_IMAGE_NAME_MAX)

static void ctx_buf(struct seal_ctx *c, size_t n)
{
	if (n > c->buf_size) {
		free(c->buf);
		c->buf_size = n < 65536 ? 65536 : n;
		c->buf = xmalloc(c->buf_size);
	}
}

/* Record idx of img: in -> c->buf (len + 16 bytes). The associated data
 * holds the plaintext length only implicitly (0). */
static int record_seal(struct seal_ctx *c, struct simg *img, uint64_t idx, const void *in,
		       size_t len, size_t *out_len)
{
	uint8_t nonce[12] = { 0 }, ad[AD_MAX];
	size_t ad_len = make_ad(ad, c, FRAME_RECORD, idx, 0, img->name);

	if (image_keys(c, img))
		return -1;
	put_le(nonce, idx, 8);
	ctx_buf(c, len + SEAL_TAG_LEN);
	*out_len = len + SEAL_TAG_LEN;
	if (gnutls_aead_cipher_encrypt(img->aead, nonce, sizeof(nonce), ad, ad_len, SEAL_TAG_LEN,
				       in, len, c->buf, out_len) < 0) {
		pr_err("image %s, record %llu: encryption failed", img->name,
		       (unsigned long long)idx);
		return -1;
	}
	return 0;
}

static int record_open(struct seal_ctx *c, struct simg *img, uint64_t idx, const void *in,
		       size_t len, size_t *out_len)
{
	uint8_t nonce[12] = { 0 }, ad[AD_MAX];
	size_t ad_len = make_ad(ad, c, FRAME_RECORD, idx, 0, img->name);

	if (image_keys(c, img))
		return -1;
	put_le(nonce, idx, 8);
	ctx_buf(c, len);
	*out_len = len;
	if (len < SEAL_TAG_LEN ||
	    gnutls_aead_cipher_decrypt(img->aead, nonce, sizeof(nonce), ad, ad_len, SEAL_TAG_LEN,
				       in, len, c->buf, out_len) < 0)
		return -1;
	return 0;
}

/* The tag of a page frame's ciphertext: GMAC, nonce = offset (8) | length
 * (4), associated data = make_ad(FRAME_PAGES, offset, length) | ciphertext. */
static int page_tag(const struct seal_ctx *c, gnutls_aead_cipher_hd_t aead, const struct simg *img,
		    uint64_t offset, const void *data, uint32_t len, uint8_t tag[SEAL_TAG_LEN],
		    bool verify)
{
	uint8_t nonce[12], ad[AD_MAX];
	giovec_t iov[2] = { { ad, make_ad(ad, c, FRAME_PAGES, offset, len, img->name) },
			    { (void *)data, len } };
	size_t tag_len = SEAL_TAG_LEN;
	int ret;

	put_le(nonce, offset, 8);
	put_le(nonce + 8, len, 4);
	if (verify)
		ret = gnutls_aead_cipher_decryptv2(aead, nonce, sizeof(nonce), iov, 2, NULL, 0, tag,
						   SEAL_TAG_LEN);
	else
		ret = gnutls_aead_cipher_encryptv2(aead, nonce, sizeof(nonce), iov, 2, NULL, 0, tag,
						   &tag_len);
	return ret < 0 ? -1 : 0;
}

/* AES-256-XTS page by page, in place; tweak = page index (8, LE) | image (8). */
static int pages_xts(gnutls_cipher_hd_t xts, const struct simg *img, uint64_t offset, uint8_t *data,
		     uint32_t len, bool decrypt)
{
	uint8_t iv[16];

	memcpy(iv + 8, img->tweak, 8);
	for (uint32_t o = 0; o < len; o += PAGE_SIZE) {
		int ret;

		put_le(iv, (offset + o) / PAGE_SIZE, 8);
		gnutls_cipher_set_iv(xts, iv, sizeof(iv));
		ret = decrypt
			  ? gnutls_cipher_decrypt2(xts, data + o, PAGE_SIZE, data + o, PAGE_SIZE)
			  : gnutls_cipher_encrypt2(xts, data + o, PAGE_SIZE, data + o, PAGE_SIZE);
		if (ret < 0)
			return -1;
	}
	return 0;
}

/* ---- page frames, spread over threads ---- */

/*
 * A page frame to seal (XTS, then its tag) or to open (check the tag, then
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
};

typedef int (*job_emit_fn)(void *owner, struct job *j);

struct pool;

struct worker {
	struct pool *p;
	pthread_t th;
	gnutls_cipher_hd_t xts;
	const struct simg *img; /* whose tag key aead holds */
	gnutls_aead_cipher_hd_t aead;
};

struct pool {
	struct seal_ctx *c;
	bool open;
	job_emit_fn emit;
	void *owner;
	int nth;
	struct worker *w;
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	struct job *ring;
	uint64_t size, submitted, taken, emitted;
	bool stop;
};

static int job_run(const struct seal_ctx *c, gnutls_cipher_hd_t xts, gnutls_aead_cipher_hd_t aead,
		   struct job *j, bool open)
{
	if (open)
		return page_tag(c, aead, j->img, j->hdr.offset, j->data, j->hdr.len, j->tag,
				true) ||
			       pages_xts(xts, j->img, j->hdr.offset, j->data, j->hdr.len, true)
			   ? -1
			   : 0;
	return pages_xts(xts, j->img, j->hdr.offset, j->data, j->hdr.len, false) ||
		       page_tag(c, aead, j->img, j->hdr.offset, j->data, j->hdr.len, j->tag, false)
		   ? -1
		   : 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct pool *p = w->p;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct job *j;

		while (!p->stop && p->taken == p->submitted)
			pthread_cond_wait(&p->work, &p->mu);
		if (p->stop)
			break;
		j = &p->ring[p->taken++ % p->size];
		pthread_mutex_unlock(&p->mu);
		j->ret = -1;
		if (w->img != j->img) {
			gnutls_datum_t key = { j->img->subkey, 32 };

			if (w->aead)
				gnutls_aead_cipher_deinit(w->aead);
			w->aead = NULL;
			w->img = NULL;
			if (gnutls_aead_cipher_init(&w->aead, GNUTLS_CIPHER_AES_256_GCM, &key) >= 0)
				w->img = j->img;
			else
				w->aead = NULL;
		}
		if (w->aead)
			j->ret = job_run(p->c, w->xts, w->aead, j, p->open);
		pthread_mutex_lock(&p->mu);
		j->done = true;
		pthread_cond_broadcast(&p->done);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void pool_free(struct pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->nth; i++) {
		if (p->w[i].th)
			pthread_join(p->w[i].th, NULL);
		if (p->w[i].xts)
			gnutls_cipher_deinit(p->w[i].xts);
		if (p->w[i].aead)
			gnutls_aead_cipher_deinit(p->w[i].aead);
	}
	for (uint64_t i = 0; i < p->size; i++)
		free(p->ring[i].data);
	free(p->ring);
	free(p->w);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	free(p);
}

/* nth worker threads; 0: the caller does the work. */
static struct pool *pool_new(struct seal_ctx *c, int nth, bool open, job_emit_fn emit, void *owner)
{
	struct pool *p = xzalloc(sizeof(*p));
	gnutls_datum_t key = { c->keys.xts, sizeof(c->keys.xts) };

	p->c = c;
	p->open = open;
	p->emit = emit;
	p->owner = owner;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	if (nth <= 0)
		return p;
	p->size = 2 * nth + 2;
	p->ring = xzalloc(p->size * sizeof(*p->ring));
	for (uint64_t i = 0; i < p->size; i++)
		p->ring[i].data = xmalloc(STASIS_PAGE_FRAME_SPAN);
	p->w = xzalloc(nth * sizeof(*p->w));
	for (int i = 0; i < nth; i++) {
		struct worker *w = &p->w[i];

		w->p = p;
		if (gnutls_cipher_init(&w->xts, GNUTLS_CIPHER_AES_256_XTS, &key, NULL) < 0) {
			w->xts = NULL;
			pr_err("cannot set up AES-256-XTS");
			goto fail;
		}
		p->nth = i + 1;
		if (pthread_create(&w->th, NULL, worker_main, w)) {
			w->th = 0;
			pr_err("cannot start a thread");
			goto fail;
		}
	}
	return p;
fail:
	pool_free(p);
	return NULL;
}

/* Hands out the oldest job once it is done. */
static int pool_emit_one(struct pool *p)
{
	struct job *j = &p->ring[p->emitted % p->size];
	int ret;

	pthread_mutex_lock(&p->mu);
	while (!j->done)
		pthread_cond_wait(&p->done, &p->mu);
	pthread_mutex_unlock(&p->mu);
	ret = p->emit(p->owner, j);
	p->emitted++;
	return ret;
}

/* Hands out the jobs that are done (all: every job, waiting for them). */
static int pool_flush(struct pool *p, bool all)
{
	while (p->emitted < p->submitted) {
		struct job *j = &p->ring[p->emitted % p->size];
		bool done;

		pthread_mutex_lock(&p->mu);
		done = j->done;
		pthread_mutex_unlock(&p->mu);
		if (!done && !all)
			return 0;
		if (pool_emit_one(p))
			return -1;
	}
	return 0;
}

/* One page frame of img (whose keys are set up); data may be overwritten. */
static int pool_submit(struct pool *p, struct simg *img, const struct stasis_frame_hdr *h,
		       uint8_t *data, const uint8_t *tag)
{
	struct job *j;

	if (!p->nth) {
		struct job one = { .img = img, .hdr = *h, .data = data };

		if (tag)
			memcpy(one.tag, tag, SEAL_TAG_LEN);
		one.ret = job_run(p->c, p->c->xts, img->aead, &one, p->open);
		one.done = true;
		return p->emit(p->owner, &one);
	}
	while (p->submitted - p->emitted == p->size)
		if (pool_emit_one(p))
			return -1;
	j = &p->ring[p->submitted % p->size];
	j->img = img;
	j->hdr = *h;
	memcpy(j->data, data, h->len);
	if (tag)
		memcpy(j->tag, tag, SEAL_TAG_LEN);
	pthread_mutex_lock(&p->mu);
	j->done = false;
	p->submitted++;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->mu);
	return pool_flush(p, false);
}

static int ctx_start(struct seal_ctx *c)
{
	gnutls_datum_t key = { c->keys.xts, sizeof(c->keys.xts) };
	int ret = gnutls_cipher_init(&c->xts, GNUTLS_CIPHER_AES_256_XTS, &key, NULL);

	if (ret < 0) {
		c->xts = NULL;
		pr_err("cannot set up AES-256-XTS: %s", gnutls_strerror(ret));
		return -1;
	}
	return 0;
}

static void ctx_free(struct seal_ctx *c)
{
	if (c->xts)
		gnutls_cipher_deinit(c->xts);
	it_free(&c->images);
	gnutls_memset(&c->keys, 0, sizeof(c->keys));
	free(c->buf);
}

static bool page_frame_ok(const struct img_frame *f)
{
	return f->hdr.len && !(f->hdr.len % PAGE_SIZE) && !(f->hdr.offset % PAGE_SIZE) &&
	       f->hdr.len <= STASIS_PAGE_FRAME_SPAN;
}

static char *tags_name(const char *pages)
{
	size_t n = strlen(pages + 6) + 10;
	char *s = xmalloc(n);

	snprintf(s, n, "pagetags-%s", pages + 6);
	return s;
}

/* ================================================================ encrypt */

/* The pages (image, page number) a stream in any order has had. */
struct page_set {
	struct seen_page {
		const struct simg *img; /* NULL: a free slot */
		uint64_t page;
	} *v;
	size_t cap, nr;
};

static size_t page_slot(const struct page_set *s, const struct simg *img, uint64_t page)
{
	uint64_t h = (page ^ (uintptr_t)img) * 0x9e3779b97f4a7c15ull;
	size_t i = (h >> 17) & (s->cap - 1);

	while (s->v[i].img && (s->v[i].img != img || s->v[i].page != page))
		i = (i + 1) & (s->cap - 1);
	return i;
}

/* False when the page was there already. */
static bool page_set_add(struct page_set *s, const struct simg *img, uint64_t page)
{
	size_t i;

	if ((s->nr + 1) * 2 > s->cap) {
		struct page_set n = { .cap = s->cap ? s->cap * 2 : 1024 };

		n.v = xzalloc(n.cap * sizeof(*n.v));
		for (size_t k = 0; k < s->cap; k++)
			if (s->v[k].img)
				n.v[page_slot(&n, s->v[k].img, s->v[k].page)] = s->v[k];
		n.nr = s->nr;
		free(s->v);
		*s = n;
	}
	i = page_slot(s, img, page);
	if (s->v[i].img)
		return false;
	s->v[i].img = img;
	s->v[i].page = page;
	s->nr++;
	return true;
}

struct seal_enc {
	struct seal_ctx c;
	struct img_writer *w;
	struct pool *pool;
	bool failed;
	bool any_order;
	struct page_set seen;
};

void seal_enc_any_order(struct seal_enc *e)
{
	e->any_order = true;
}

static int enc_emit(void *owner, struct job *j);

struct seal_enc *seal_enc_create(const char *const *certs, int nr_certs, struct img_writer *w,
				 int threads)
{
	struct seal_enc *e = xzalloc(sizeof(*e));
	Stasis__SealCipher cipher = STASIS__SEAL_CIPHER__INIT;
	uint8_t id[SEAL_ID_LEN];
	size_t len;
	uint8_t *buf;
	struct simg *img;

	e->w = w;
	if (!nr_certs) {
		pr_err("no certificate to seal the checkpoint for");
		goto fail;
	}
	if (seal_keys_new(&e->c.keys) || gnutls_rnd(GNUTLS_RND_NONCE, id, sizeof(id)) < 0)
		goto fail;
	cipher.version = SEAL_VERSION;
	cipher.record_cipher = SEAL_RECORD_CIPHER;
	cipher.page_cipher = SEAL_PAGE_CIPHER;
	cipher.page_tag = SEAL_PAGE_TAG;
	cipher.kdf = SEAL_KDF;
	cipher.checkpoint_id.data = id;
	cipher.checkpoint_id.len = sizeof(id);
	for (int i = 0; i < nr_certs; i++)
		if (seal_wrap(&cipher, certs[i], &e->c.keys)) {
			seal_cipher_free_recipients(&cipher);
			goto fail;
		}
	len = protobuf_c_message_get_packed_size(&cipher.base);
	buf = xmalloc(len);
	protobuf_c_message_pack(&cipher.base, buf);
	seal_cipher_free_recipients(&cipher);
	gnutls_hash_fast(GNUTLS_DIG_SHA256, buf, len, e->c.digest);
	img = it_get(&e->c.images, "cipher");
	img->declared = true;
	img->records = 1;
	if (imgw_record_raw(w, "cipher", buf, len)) {
		free(buf);
		goto fail;
	}
	free(buf);
	if (ctx_start(&e->c))
		goto fail;
	e->pool = pool_new(&e->c, threads, false, enc_emit, e);
	if (!e->pool)
		goto fail;
	return e;
fail:
	seal_enc_free(e);
	return NULL;
}

/* The tag record first: whoever opens the stream never waits for it. */
static int enc_emit(void *owner, struct job *j)
{
	struct seal_enc *e = owner;
	Stasis__PageTag pt = STASIS__PAGE_TAG__INIT;
	struct img_frame f = { .hdr = j->hdr, .image = j->img->name, .data = j->data };
	char *tname;
	int ret;

	if (j->ret) {
		pr_err("image %s: cannot seal the page frame at offset %#llx", j->img->name,
		       (unsigned long long)j->hdr.offset);
		return -1;
	}
	pt.offset = j->hdr.offset;
	pt.len = j->hdr.len;
	pt.tag.data = j->tag;
	pt.tag.len = SEAL_TAG_LEN;
	tname = tags_name(j->img->name);
	ret = imgw_record(e->w, tname, &pt.base);
	free(tname);
	/* tests: a page of a lazy stream altered on its way, once sealed */
	if (e->any_order && fault_hit("seal-lazy-page-flip"))
		j->data[j->hdr.len / 2] ^= 0x01;
	return ret ? -1 : imgw_frame(e->w, &f);
}

static int enc_pages(struct seal_enc *e, struct simg *img, struct img_frame *f)
{
	struct simg *timg;
	char *tname;

	if (!page_frame_ok(f) || (!e->any_order && f->hdr.offset != img->page_bytes)) {
		pr_err(
		    "image %s: page frame at offset %#llx (%u bytes) is not whole pages in order",
		    img->name, (unsigned long long)f->hdr.offset, f->hdr.len);
		return -1;
	}
	for (uint64_t p = 0; e->any_order && p < f->hdr.len / PAGE_SIZE; p++)
		if (!page_set_add(&e->seen, img, f->hdr.offset / PAGE_SIZE + p)) {
			pr_err("image %s: the page at offset %#llx comes a second time: it cannot "
			       "be sealed twice",
			       img->name, (unsigned long long)(f->hdr.offset + p * PAGE_SIZE));
			return -1;
		}
	if (image_keys(&e->c, img))
		return -1;
	img->page_bytes += f->hdr.len;
	tname = tags_name(img->name);
	timg = it_get(&e->c.images, tname);
	free(tname);
	if (!timg)
		return -1;
	timg->declared = true;
	timg->records++;
	return pool_submit(e->pool, img, &f->hdr, f->data, NULL);
}

int seal_enc_put(struct seal_enc *e, struct img_frame *f)
{
	struct simg *img;
	size_t len;

	if (e->failed)
		return -1;
	/* everything in order: the page frames under way go out first */
	if (f->hdr.kind != FRAME_PAGES && pool_flush(e->pool, true))
		goto fail;
	switch (f->hdr.kind) {
	case FRAME_HEAD:
	case FRAME_TRAILER:
		return 0;
	case FRAME_IMAGE:
		if (seal_image_reserved(f->image)) {
			pr_err("the input holds an image named %s, which only a sealed checkpoint "
			       "may hold: is it sealed already?",
			       f->image);
			goto fail;
		}
		if (strlen(f->image) + 3 >= STASIS_IMAGE_NAME_MAX && img_is_pages(f->image)) {
			pr_err("page image %s: name too long to seal", f->image);
			goto fail;
		}
		img = it_get(&e->c.images, f->image);
		if (!img)
			goto fail;
		img->declared = true;
		if (imgw_frame(e->w, f))
			goto fail;
		return 0;
	case FRAME_RECORD:
		img = it_find(&e->c.images, f->image);
		if (!img || img->kind != IK_RECORDS) {
			pr_err("record of undeclared or page image %s", f->image);
			goto fail;
		}
		if (f->hdr.len > SEAL_RECORD_MAX) {
			pr_err("image %s, record %llu: %u bytes, too large to seal", f->image,
			       (unsigned long long)img->records, f->hdr.len);
			goto fail;
		}
		if (record_seal(&e->c, img, img->records, f->data, f->hdr.len, &len) ||
		    imgw_record_raw(e->w, img->name, e->c.buf, len))
			goto fail;
		img->records++;
		return 0;
	case FRAME_PAGES:
		img = it_find(&e->c.images, f->image);
		if (!img || img->kind != IK_PAGES) {
			pr_err("page data of undeclared or record image %s", f->image);
			goto fail;
		}
		if (enc_pages(e, img, f))
			goto fail;
		return 0;
	default:
		pr_err("frame %llu has kind %u, which cannot be sealed",
		       (unsigned long long)f->hdr.seq, f->hdr.kind);
		goto fail;
	}
fail:
	e->failed = true;
	return -1;
}

static int enc_summary_part(struct seal_enc *e, Stasis__SealSummary *s, uint64_t idx)
{
	size_t len = protobuf_c_message_get_packed_size(&s->base), out_len;
	uint8_t *buf = xmalloc(len + 1);
	struct simg *img = it_get(&e->c.images, "seal");
	int ret;

	protobuf_c_message_pack(&s->base, buf);
	ret = record_seal(&e->c, img, idx, buf, len, &out_len) ||
	      imgw_record_raw(e->w, "seal", e->c.buf, out_len);
	free(buf);
	return ret ? -1 : 0;
}

static size_t summary_entry_size(const Stasis__SealImage *si)
{
	return protobuf_c_message_get_packed_size(&si->base) + 8;
}

int seal_enc_finish(struct seal_enc *e)
{
	struct itable *t = &e->c.images;
	Stasis__SealSummary s = STASIS__SEAL_SUMMARY__INIT;
	Stasis__SealImage *ents, **ptrs;
	uint32_t m = 0, parts = 1, part = 0, begin = 0;
	size_t size = 0;
	int ret = 0;

	if (e->failed || pool_flush(e->pool, true)) {
		e->failed = true;
		return -1;
	}
	it_get(t, "seal")->declared = true;
	ents = xzalloc(t->nr * sizeof(*ents));
	ptrs = xzalloc(t->nr * sizeof(*ptrs));
	for (uint32_t i = 0; i < t->nr; i++) {
		if (t->v[i]->kind == IK_SUMMARY)
			continue;
		stasis__seal_image__init(&ents[m]);
		ents[m].name = t->v[i]->name;
		ents[m].records = t->v[i]->records;
		ents[m].page_bytes = t->v[i]->page_bytes;
		ptrs[m] = &ents[m];
		m++;
	}
	/* parts of at most SEAL_SUMMARY_PART bytes; each says how many */
	for (uint32_t j = 0; j < m; j++) {
		size_t es = summary_entry_size(&ents[j]);

		if (size && size + es > SEAL_SUMMARY_PART) {
			parts++;
			size = 0;
		}
		size += es;
	}
	size = 0;
	for (uint32_t j = 0; j <= m && !ret; j++) {
		size_t es = j < m ? summary_entry_size(&ents[j]) : 0;

		if (j == m || (size && size + es > SEAL_SUMMARY_PART)) {
			s.images = ptrs + begin;
			s.n_images = j - begin;
			s.parts = parts;
			ret = enc_summary_part(e, &s, part++);
			begin = j;
			size = 0;
		}
		size += es;
	}
	free(ents);
	free(ptrs);
	if (ret)
		e->failed = true;
	return ret;
}

void seal_enc_free(struct seal_enc *e)
{
	if (!e)
		return;
	pool_free(e->pool);
	ctx_free(&e->c);
	free(e->seen.v);
	free(e);
}

/* ================================================================ open */

struct held {
	struct simg *img;
	struct stasis_frame_hdr hdr;
	uint8_t *data;
};

struct seal_open {
	struct seal_ctx c;
	struct seal_privkey *pk;
	unsigned flags;
	seal_out_fn out;
	void *arg;
	bool started; /* the cipher image was declared */
	bool keyed;   /* ... and its record opened */
	bool failed;
	uint64_t summary_parts; /* 0 until the first part */
	/* page frames whose tag has not arrived, in order */
	struct held *hold;
	size_t hold_head, hold_nr, hold_cap;
	uint64_t hold_bytes;
	uint64_t tags_queued;
	int threads;
	struct pool *pool; /* once the keys are known */
};

static int open_emit(void *owner, struct job *j);

struct seal_open *seal_open_create(const char *key_path, unsigned flags, seal_out_fn out, void *arg)
{
	struct seal_open *o;
	struct seal_privkey *pk = seal_privkey_load(key_path);

	if (!pk)
		return NULL;
	o = xzalloc(sizeof(*o));
	o->pk = pk;
	o->flags = flags;
	o->out = out;
	o->arg = arg;
	return o;
}

void seal_open_threads(struct seal_open *o, int threads)
{
	o->threads = threads;
}

void seal_open_free(struct seal_open *o)
{
	if (!o)
		return;
	for (size_t i = 0; i < o->hold_nr; i++)
		free(o->hold[(o->hold_head + i) % o->hold_cap].data);
	free(o->hold);
	pool_free(o->pool);
	seal_privkey_free(o->pk);
	ctx_free(&o->c);
	free(o);
}

static int emit(struct seal_open *o, const struct stasis_frame_hdr *hdr, const char *image,
		const void *data, uint32_t len)
{
	struct img_frame f = { .hdr = *hdr, .image = image, .data = (void *)data };

	f.hdr.len = len;
	return o->out(o->arg, &f);
}

static const char *frame_no(const struct stasis_frame_hdr *h, char *buf, size_t size)
{
	if (h->seq)
		snprintf(buf, size, ", stream frame %llu", (unsigned long long)h->seq);
	else
		buf[0] = 0;
	return buf;
}

/* Same bytes again when packed: no other encoding of the same values slips
 * through (the bytes of plaintext records are all checked). */
static void *unpack_exact(const ProtobufCMessageDescriptor *desc, const void *data, size_t len)
{
	ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, len, data);
	uint8_t *buf;
	bool same;

	if (!m)
		return NULL;
	if (protobuf_c_message_get_packed_size(m) != len) {
		protobuf_c_message_free_unpacked(m, NULL);
		return NULL;
	}
	buf = xmalloc(len + 1);
	protobuf_c_message_pack(m, buf);
	same = !memcmp(buf, data, len);
	free(buf);
	if (!same) {
		protobuf_c_message_free_unpacked(m, NULL);
		return NULL;
	}
	return m;
}

static int open_cipher(struct seal_open *o, struct img_frame *f)
{
	Stasis__SealCipher *c = unpack_exact(&stasis__seal_cipher__descriptor, f->data, f->hdr.len);
	int ret = -1;

	if (!c) {
		pr_err("cipher image: its record is damaged (not a valid SealCipher)");
		return -1;
	}
	if (c->version != SEAL_VERSION) {
		pr_err("cipher image: sealed with format version %u, this is %u", c->version,
		       SEAL_VERSION);
		goto out;
	}
	if (strcmp(c->record_cipher, SEAL_RECORD_CIPHER) ||
	    strcmp(c->page_cipher, SEAL_PAGE_CIPHER) || strcmp(c->page_tag, SEAL_PAGE_TAG) ||
	    strcmp(c->kdf, SEAL_KDF)) {
		pr_err("cipher image: unsupported algorithms %.40s, %.40s, %.40s, %.40s",
		       c->record_cipher, c->page_cipher, c->page_tag, c->kdf);
		goto out;
	}
	if (c->checkpoint_id.len != SEAL_ID_LEN) {
		pr_err("cipher image: damaged (checkpoint id)");
		goto out;
	}
	if (seal_unwrap(o->pk, c, &o->c.keys) || ctx_start(&o->c))
		goto out;
	o->pool = pool_new(&o->c, o->threads, true, open_emit, o);
	if (!o->pool)
		goto out;
	gnutls_hash_fast(GNUTLS_DIG_SHA256, f->data, f->hdr.len, o->c.digest);
	o->keyed = true;
	ret = 0;
out:
	protobuf_c_message_free_unpacked(&c->base, NULL);
	return ret;
}

static int open_emit(void *owner, struct job *j)
{
	struct seal_open *o = owner;
	char fno[48];

	if (j->ret) {
		pr_err("image %s: page frame at offset %#llx (%u bytes%s) fails authentication: "
		       "the checkpoint was altered",
		       j->img->name, (unsigned long long)j->hdr.offset, j->hdr.len,
		       frame_no(&j->hdr, fno, sizeof(fno)));
		return -1;
	}
	return emit(o, &j->hdr, j->img->name, j->data, j->hdr.len);
}

/* One page frame whose tag is at the head of the image's queue: checked,
 * decrypted (in place) and handed out, in order. */
static int open_page_frame(struct seal_open *o, struct simg *img, const struct stasis_frame_hdr *h,
			   uint8_t *data)
{
	struct ptag *t = &img->tags[img->tag_head];
	char fno[48];

	if (t->offset != h->offset || t->len != h->len) {
		pr_err("image %s: page frame at offset %#llx (%u bytes%s) does not match its tag "
		       "(offset %#llx, %u bytes): frames were altered, dropped or reordered",
		       img->name, (unsigned long long)h->offset, h->len,
		       frame_no(h, fno, sizeof(fno)), (unsigned long long)t->offset, t->len);
		return -1;
	}
	img->tag_head = (img->tag_head + 1) % img->tag_cap;
	img->tag_nr--;
	o->tags_queued--;
	if (image_keys(&o->c, img))
		return -1;
	return pool_submit(o->pool, img, h, data, t->tag);
}

/* Page frames held for their tags, in order, as far as the tags go. */
static int drain_held(struct seal_open *o)
{
	while (o->hold_nr) {
		struct held *hd = &o->hold[o->hold_head];
		int ret;

		if (!hd->img->tag_nr)
			return 0;
		ret = open_page_frame(o, hd->img, &hd->hdr, hd->data);
		free(hd->data);
		hd->data = NULL;
		o->hold_bytes -= hd->hdr.len;
		o->hold_head = (o->hold_head + 1) % o->hold_cap;
		o->hold_nr--;
		if (ret)
			return -1;
	}
	return 0;
}

static int hold_frame(struct seal_open *o, struct simg *img, const struct img_frame *f)
{
	char fno[48];
	struct held *hd;

	if (o->hold_bytes + f->hdr.len > SEAL_HOLD_MAX) {
		pr_err("image %s: page frame at offset %#llx%s has no authentication tag within "
		       "%u MiB of page data: tags were dropped or moved",
		       img->name, (unsigned long long)f->hdr.offset,
		       frame_no(&f->hdr, fno, sizeof(fno)), SEAL_HOLD_MAX >> 20);
		return -1;
	}
	if (o->hold_nr == o->hold_cap) {
		size_t cap = o->hold_cap ? 2 * o->hold_cap : 16;
		struct held *n = xmalloc(cap * sizeof(*n));

		for (size_t i = 0; i < o->hold_nr; i++)
			n[i] = o->hold[(o->hold_head + i) % o->hold_cap];
		free(o->hold);
		o->hold = n;
		o->hold_cap = cap;
		o->hold_head = 0;
	}
	hd = &o->hold[(o->hold_head + o->hold_nr++) % o->hold_cap];
	hd->img = img;
	hd->hdr = f->hdr;
	hd->data = xmalloc(f->hdr.len);
	memcpy(hd->data, f->data, f->hdr.len);
	o->hold_bytes += f->hdr.len;
	return 0;
}

static int open_tag(struct seal_open *o, struct simg *timg, uint64_t idx, const struct img_frame *f)
{
	Stasis__PageTag *pt = unpack_exact(&stasis__page_tag__descriptor, f->data, f->hdr.len);
	char pname[STASIS_IMAGE_NAME_MAX + 8], fno[48];
	struct simg *img;
	struct ptag *t;

	frame_no(&f->hdr, fno, sizeof(fno));
	if (!pt || pt->tag.len != SEAL_TAG_LEN || !pt->len || pt->len % PAGE_SIZE ||
	    pt->len > STASIS_PAGE_FRAME_SPAN || pt->offset % PAGE_SIZE) {
		pr_err("image %s, record %llu%s: damaged page tag", timg->name,
		       (unsigned long long)idx, fno);
		goto fail;
	}
	snprintf(pname, sizeof(pname), "pages-%s", timg->name + 9);
	img = it_get(&o->c.images, pname);
	if (!img)
		goto fail;
	if (img->kind != IK_PAGES ||
	    (!(o->flags & SEAL_OPEN_ANY_ORDER) && pt->offset != img->tag_next)) {
		pr_err("image %s, record %llu%s: tag for offset %#llx of %s, expected %#llx: tags "
		       "were altered, dropped or reordered",
		       timg->name, (unsigned long long)idx, fno, (unsigned long long)pt->offset,
		       pname, (unsigned long long)img->tag_next);
		goto fail;
	}
	if (o->tags_queued >= SEAL_TAGS_MAX) {
		pr_err("image %s: more than %u page tags ahead of their frames", timg->name,
		       SEAL_TAGS_MAX);
		goto fail;
	}
	if (img->tag_nr == img->tag_cap) {
		size_t cap = img->tag_cap ? 2 * img->tag_cap : 16;
		struct ptag *n = xmalloc(cap * sizeof(*n));

		for (size_t i = 0; i < img->tag_nr; i++)
			n[i] = img->tags[(img->tag_head + i) % img->tag_cap];
		free(img->tags);
		img->tags = n;
		img->tag_cap = cap;
		img->tag_head = 0;
	}
	t = &img->tags[(img->tag_head + img->tag_nr++) % img->tag_cap];
	t->offset = pt->offset;
	t->len = pt->len;
	memcpy(t->tag, pt->tag.data, SEAL_TAG_LEN);
	img->tag_next += pt->len;
	o->tags_queued++;
	protobuf_c_message_free_unpacked(&pt->base, NULL);
	if (o->flags & SEAL_OPEN_META && emit(o, &f->hdr, timg->name, f->data, f->hdr.len))
		return -1;
	return drain_held(o);
fail:
	if (pt)
		protobuf_c_message_free_unpacked(&pt->base, NULL);
	return -1;
}

static int open_summary(struct seal_open *o, const void *data, size_t len, uint64_t idx)
{
	Stasis__SealSummary *s = unpack_exact(&stasis__seal_summary__descriptor, data, len);
	int ret = -1;

	if (!s || !s->parts || (o->summary_parts && s->parts != o->summary_parts)) {
		pr_err("image seal, record %llu: damaged summary", (unsigned long long)idx);
		goto out;
	}
	o->summary_parts = s->parts;
	for (size_t i = 0; i < s->n_images; i++) {
		Stasis__SealImage *si = s->images[i];
		struct simg *img;

		if (!img_name_valid(si->name) || !strcmp(si->name, "seal")) {
			pr_err("image seal, record %llu: damaged summary", (unsigned long long)idx);
			goto out;
		}
		img = it_get(&o->c.images, si->name);
		if (!img)
			goto out;
		if (img->expected) {
			pr_err("image seal: %s is listed twice", si->name);
			goto out;
		}
		img->expected = true;
		img->exp_records = si->records;
		img->exp_page_bytes = si->page_bytes;
	}
	ret = 0;
out:
	if (s)
		protobuf_c_message_free_unpacked(&s->base, NULL);
	return ret;
}

static int open_record(struct seal_open *o, struct simg *img, struct img_frame *f)
{
	uint64_t idx = img->records++;
	size_t len;
	char fno[48];

	switch (img->kind) {
	case IK_CIPHER:
		if (idx) {
			pr_err("cipher image: more than one record: the checkpoint was altered");
			return -1;
		}
		if (open_cipher(o, f))
			return -1;
		if (o->flags & SEAL_OPEN_META)
			return emit(o, &f->hdr, img->name, f->data, f->hdr.len);
		return 0;
	case IK_TAGS:
		return open_tag(o, img, idx, f);
	case IK_PAGES:
		pr_err("image %s: record in a page image", img->name);
		return -1;
	case IK_RECORDS:
	case IK_SUMMARY:
		break;
	}
	if (record_open(&o->c, img, idx, f->data, f->hdr.len, &len)) {
		pr_err("image %s, record %llu%s fails authentication: the checkpoint was altered, "
		       "its records reordered, or it is not one checkpoint",
		       img->name, (unsigned long long)idx, frame_no(&f->hdr, fno, sizeof(fno)));
		return -1;
	}
	if (img->kind == IK_SUMMARY) {
		if (open_summary(o, o->c.buf, len, idx))
			return -1;
		if (!(o->flags & SEAL_OPEN_META))
			return 0;
	}
	return emit(o, &f->hdr, img->name, o->c.buf, len);
}

static int open_pages(struct seal_open *o, struct simg *img, struct img_frame *f)
{
	char fno[48];

	frame_no(&f->hdr, fno, sizeof(fno));
	if (!page_frame_ok(f)) {
		pr_err("image %s: page frame at offset %#llx (%u bytes%s) is damaged", img->name,
		       (unsigned long long)f->hdr.offset, f->hdr.len, fno);
		return -1;
	}
	if (!(o->flags & SEAL_OPEN_ANY_ORDER) && f->hdr.offset != img->page_bytes) {
		pr_err("image %s: page frame at offset %#llx%s, expected %#llx: frames were "
		       "dropped or reordered",
		       img->name, (unsigned long long)f->hdr.offset, fno,
		       (unsigned long long)img->page_bytes);
		return -1;
	}
	img->page_bytes += f->hdr.len;
	if (o->hold_nr || !img->tag_nr)
		return hold_frame(o, img, f);
	return open_page_frame(o, img, &f->hdr, f->data);
}

int seal_open_put(struct seal_open *o, struct img_frame *f)
{
	const struct stasis_frame_hdr *h = &f->hdr;
	struct simg *img;
	char fno[48];

	if (o->failed)
		return -1;
	frame_no(h, fno, sizeof(fno));
	/* fields that carry nothing must be zero: no byte goes unchecked */
	if (h->flags || (h->kind != FRAME_PAGES && h->offset)) {
		pr_err("sealed checkpoint: frame header%s altered (image %s)", fno,
		       f->image ? f->image : "-");
		goto fail;
	}
	if (h->kind == FRAME_HEAD) {
		if (!h->image)
			return 0;
		pr_err("sealed checkpoint: stream head altered");
		goto fail;
	}
	if (!f->image ||
	    (h->kind != FRAME_IMAGE && h->kind != FRAME_RECORD && h->kind != FRAME_PAGES)) {
		pr_err("sealed checkpoint: frame%s has kind %u", fno, h->kind);
		goto fail;
	}
	if (!o->started) {
		if (h->kind != FRAME_IMAGE || strcmp(f->image, "cipher")) {
			pr_err("not a sealed checkpoint: it does not start with its cipher image");
			goto fail;
		}
		o->started = true;
	} else if (!o->keyed && (h->kind != FRAME_RECORD || strcmp(f->image, "cipher"))) {
		pr_err("sealed checkpoint: image %s comes before the cipher image's record",
		       f->image);
		goto fail;
	}
	img = it_get(&o->c.images, f->image);
	if (!img)
		goto fail;
	/* what goes out goes out in order: the page frames under way first
	 * (tag records go nowhere, unless the meta images are wanted) */
	if (o->pool && h->kind != FRAME_PAGES &&
	    (img->kind != IK_TAGS || o->flags & SEAL_OPEN_META) && pool_flush(o->pool, true))
		goto fail;
	switch (h->kind) {
	case FRAME_IMAGE:
		if (img->declared) {
			pr_err("sealed checkpoint: image %s is declared twice", img->name);
			goto fail;
		}
		img->declared = true;
		/* pagetags-X: pages-X must be a valid name too */
		if (img->kind == IK_TAGS && strlen(img->name) - 3 >= STASIS_IMAGE_NAME_MAX) {
			pr_err("sealed checkpoint: invalid image name %s", img->name);
			goto fail;
		}
		if ((img->kind == IK_RECORDS || img->kind == IK_PAGES ||
		     o->flags & SEAL_OPEN_META) &&
		    emit(o, h, img->name, NULL, 0))
			goto fail;
		return 0;
	case FRAME_RECORD:
		if (!img->declared || img->kind == IK_PAGES) {
			pr_err("sealed checkpoint: record%s of undeclared or page image %s", fno,
			       img->name);
			goto fail;
		}
		if (open_record(o, img, f))
			goto fail;
		return 0;
	default:
		if (!img->declared || img->kind != IK_PAGES) {
			pr_err("sealed checkpoint: page frame%s of undeclared or record image %s",
			       fno, img->name);
			goto fail;
		}
		if (open_pages(o, img, f))
			goto fail;
		return 0;
	}
fail:
	o->failed = true;
	return -1;
}

int seal_open_finish(struct seal_open *o)
{
	struct itable *t = &o->c.images;
	struct simg *seal;

	if (o->failed)
		return -1;
	o->failed = true;
	if (o->pool && pool_flush(o->pool, true))
		return -1;
	if (!o->keyed) {
		pr_err("truncated sealed checkpoint: it ends %s",
		       o->started ? "in its cipher image" : "before it starts");
		return -1;
	}
	if (o->hold_nr) {
		struct held *hd = &o->hold[o->hold_head];

		pr_err("image %s: page frame at offset %#llx has no authentication tag: the "
		       "checkpoint was altered",
		       hd->img->name, (unsigned long long)hd->hdr.offset);
		return -1;
	}
	seal = it_find(t, "seal");
	if (!o->summary_parts || !seal || seal->records != o->summary_parts) {
		pr_err("truncated sealed checkpoint: its seal summary is %s",
		       o->summary_parts ? "incomplete" : "missing");
		return -1;
	}
	for (uint32_t i = 0; i < t->nr; i++) {
		struct simg *img = t->v[i];

		if (img->kind == IK_SUMMARY)
			continue;
		if (img->declared && !img->expected) {
			pr_err("image %s is not part of the sealed checkpoint: it was added",
			       img->name);
			return -1;
		}
		if (!img->declared) {
			pr_err("image %s of the sealed checkpoint is missing", img->name);
			return -1;
		}
		if (img->records != img->exp_records) {
			pr_err(
			    "image %s: %llu records, the sealed checkpoint has %llu: records were "
			    "%s",
			    img->name, (unsigned long long)img->records,
			    (unsigned long long)img->exp_records,
			    img->records < img->exp_records ? "dropped" : "added");
			return -1;
		}
		if (img->page_bytes != img->exp_page_bytes || img->tag_nr) {
			pr_err(
			    "image %s: %llu bytes of pages, the sealed checkpoint has %llu: page "
			    "frames were %s",
			    img->name, (unsigned long long)img->page_bytes,
			    (unsigned long long)img->exp_page_bytes,
			    img->page_bytes < img->exp_page_bytes ? "dropped" : "added");
			return -1;
		}
	}
	o->failed = false;
	return 0;
}

/* ---- whole streams and directories ---- */

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
	struct img_frame f = { .hdr = { .kind = FRAME_IMAGE, .image = id },
			       .image = name,
			       .data = buf };
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
		f.hdr.kind = FRAME_PAGES;
		for (;;) {
			ssize_t n = read_full(fd, buf, STASIS_PAGE_FRAME_SPAN);

			if (n < 0) {
				pr_perror("cannot read %s/%s", dir, fname);
				goto out;
			}
			if (!n)
				break;
			f.hdr.len = n;
			if (seal_open_put(o, &f))
				goto out;
			f.hdr.offset += n;
		}
	} else {
		uint32_t len;
		ssize_t n;

		f.hdr.kind = FRAME_RECORD;
		if (read_full(fd, buf, 8) != 8 || memcmp(buf, STASIS_IMG_MAGIC, 8)) {
			pr_err("%s/%s: not a stasis image file", dir, fname);
			goto out;
		}
		for (unsigned idx = 0; (n = read_full(fd, &len, 4)) != 0; idx++) {
			if (n != 4 || len > STASIS_FRAME_MAX ||
			    read_full(fd, buf, len) != (ssize_t)len) {
				pr_err("%s/%s: record %u is damaged or cut short", dir, fname, idx);
				goto out;
			}
			f.hdr.len = len;
			if (seal_open_put(o, &f))
				goto out;
		}
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
		o->failed = true;
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
