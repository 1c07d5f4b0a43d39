// SPDX-License-Identifier: GPL-2.0
/* Sealing a checkpoint stream frame by frame (stasis-seal --encrypt). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stasis/fault.h"
#include "stasis/log.h"
#include "stasis/util.h"

#include "seal-int.h"

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

/* A page frame to seal in place later (seal_enc_in_place), then its tag. */
struct later {
	struct simg *img;
	uint64_t offset;
	uint32_t len;
	int ret;
	uint8_t tag[SEAL_TAG_LEN];
};

struct seal_enc {
	struct seal_ctx c;
	struct img_writer *w;
	struct pool *pool;
	bool failed;
	bool any_order;
	struct page_set seen;
	/* seal_enc_in_place: frames [begin, sealed) have their tags, to be
	 * written; [sealed, end) wait for the hook. Counters run, indices
	 * are modulo cap; mu guards them and the ring. */
	bool in_place;
	bool broken; /* the hook failed: no more frames get sealed */
	void (*flush)(void *arg);
	void *flush_arg;
	pthread_mutex_t mu;
	pthread_cond_t sealed_cv;
	struct later *q;
	size_t cap;
	uint64_t begin, sealed, end;
};

void seal_enc_any_order(struct seal_enc *e)
{
	e->any_order = true;
}

void seal_enc_in_place(struct seal_enc *e, void (*flush)(void *arg), void *arg)
{
	e->in_place = true;
	e->flush = flush;
	e->flush_arg = arg;
}

static int hook_broken(struct seal_enc *e)
{
	pthread_mutex_lock(&e->mu);
	e->broken = true;
	pthread_cond_signal(&e->sealed_cv);
	pthread_mutex_unlock(&e->mu);
	return -1;
}

/* Runs on the page store's thread: the frames of this run of page data,
 * the oldest frames not sealed yet, sealed where they lie. */
int seal_enc_page_hook(void *arg, const char *image, uint64_t offset, void *data, size_t len)
{
	struct seal_enc *e = arg;

	for (size_t at = 0; at < len;) {
		struct later l;
		struct job j = {0};

		pthread_mutex_lock(&e->mu);
		if (e->sealed == e->end) {
			pthread_mutex_unlock(&e->mu);
			pr_err("image %s: page data at offset %#llx that was never a page frame",
			       image, (unsigned long long)(offset + at));
			return hook_broken(e);
		}
		l = e->q[e->sealed % e->cap];
		pthread_mutex_unlock(&e->mu);
		if (strcmp(l.img->name, image) || l.offset != offset + at || l.len > len - at) {
			pr_err("image %s: page data at offset %#llx is not the page frame of %s at "
			       "%#llx that comes next",
			       image, (unsigned long long)(offset + at), l.img->name,
			       (unsigned long long)l.offset);
			return hook_broken(e);
		}
		j.img = l.img;
		j.hdr.offset = l.offset;
		j.hdr.len = l.len;
		j.data = (uint8_t *)data + at;
		/* the caller's thread touches neither c->xts nor a page image's
		 * aead in this mode: they are this thread's */
		j.ret = seal_job_run(&e->c, e->c.xts, l.img->aead, &j, false);
		pthread_mutex_lock(&e->mu);
		e->q[e->sealed % e->cap].ret = j.ret;
		memcpy(e->q[e->sealed % e->cap].tag, j.tag, SEAL_TAG_LEN);
		e->sealed++;
		pthread_cond_signal(&e->sealed_cv);
		pthread_mutex_unlock(&e->mu);
		if (j.ret) {
			pr_err("image %s: cannot seal the page frame at offset %#llx", image,
			       (unsigned long long)l.offset);
			return hook_broken(e);
		}
		at += l.len;
	}
	return 0;
}

/* A page frame to be sealed by the hook. */
static void later_push(struct seal_enc *e, struct simg *img, const struct stasis_frame_hdr *h)
{
	pthread_mutex_lock(&e->mu);
	if (e->end - e->begin == e->cap) {
		size_t cap = e->cap ? 2 * e->cap : 256;
		struct later *n = xmalloc(cap * sizeof(*n));

		for (uint64_t k = e->begin; k < e->end; k++)
			n[k % cap] = e->q[k % e->cap];
		free(e->q);
		e->q = n;
		e->cap = cap;
	}
	e->q[e->end % e->cap] = (struct later){.img = img, .offset = h->offset, .len = h->len};
	e->end++;
	pthread_mutex_unlock(&e->mu);
}

/* The tag records of the frames sealed so far (all: of every frame,
 * waiting for the hook). */
static int later_tags(struct seal_enc *e, bool all)
{
	if (all && e->flush)
		e->flush(e->flush_arg);
	pthread_mutex_lock(&e->mu);
	while (e->begin < e->end) {
		Stasis__PageTag pt = STASIS__PAGE_TAG__INIT;
		struct later l;
		char *tname;
		int ret;

		if (e->begin == e->sealed) {
			if (e->broken) {
				pthread_mutex_unlock(&e->mu);
				return -1; /* said by the hook */
			}
			if (!all)
				break;
			pthread_cond_wait(&e->sealed_cv, &e->mu);
			continue;
		}
		l = e->q[e->begin % e->cap];
		pthread_mutex_unlock(&e->mu);
		if (l.ret)
			return -1; /* said by the hook */
		pt.offset = l.offset;
		pt.len = l.len;
		pt.tag.data = l.tag;
		pt.tag.len = SEAL_TAG_LEN;
		tname = seal_tags_name(l.img->name);
		ret = imgw_record(e->w, tname, &pt.base);
		free(tname);
		if (ret)
			return -1;
		pthread_mutex_lock(&e->mu);
		e->begin++;
	}
	pthread_mutex_unlock(&e->mu);
	return 0;
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
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->sealed_cv, NULL);
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
	img = seal_image_get(&e->c.images, "cipher");
	img->declared = true;
	img->records = 1;
	if (imgw_record_raw(w, "cipher", buf, len)) {
		free(buf);
		goto fail;
	}
	free(buf);
	if (seal_ctx_start(&e->c))
		goto fail;
	e->pool = seal_pool_new(&e->c, threads, false, enc_emit, e);
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
	struct img_frame f = {.hdr = j->hdr, .image = j->img->name, .data = j->data};
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
	tname = seal_tags_name(j->img->name);
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

	if (!seal_page_frame_ok(f) || (!e->any_order && f->hdr.offset != img->page_bytes)) {
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
	if (seal_image_keys(&e->c, img))
		return -1;
	img->page_bytes += f->hdr.len;
	tname = seal_tags_name(img->name);
	timg = seal_image_get(&e->c.images, tname);
	free(tname);
	if (!timg)
		return -1;
	timg->declared = true;
	timg->records++;
	if (e->in_place) {
		/* sealed in the store before it is written: goes in as it is */
		later_push(e, img, &f->hdr);
		return imgw_frame(e->w, f) || later_tags(e, false) ? -1 : 0;
	}
	return seal_pool_submit(e->pool, img, &f->hdr, f->data, NULL, false);
}

int seal_enc_put(struct seal_enc *e, struct img_frame *f)
{
	struct simg *img;
	size_t len;

	if (e->failed)
		return -1;
	/* everything in order: the page frames under way go out first */
	if (f->hdr.kind != FRAME_PAGES && seal_pool_flush(e->pool, true))
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
		img = seal_image_get(&e->c.images, f->image);
		if (!img)
			goto fail;
		img->declared = true;
		if (imgw_frame(e->w, f))
			goto fail;
		return 0;
	case FRAME_RECORD:
		img = seal_image_find(&e->c.images, f->image);
		if (!img || img->kind != IK_RECORDS) {
			pr_err("record of undeclared or page image %s", f->image);
			goto fail;
		}
		if (f->hdr.len > SEAL_RECORD_MAX) {
			pr_err("image %s, record %llu: %u bytes, too large to seal", f->image,
			       (unsigned long long)img->records, f->hdr.len);
			goto fail;
		}
		if (seal_record_seal(&e->c, img, img->records, f->data, f->hdr.len, &len) ||
		    imgw_record_raw(e->w, img->name, e->c.buf, len))
			goto fail;
		img->records++;
		return 0;
	case FRAME_PAGES:
		img = seal_image_find(&e->c.images, f->image);
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
	struct simg *img = seal_image_get(&e->c.images, "seal");
	int ret;

	protobuf_c_message_pack(&s->base, buf);
	ret = seal_record_seal(&e->c, img, idx, buf, len, &out_len) ||
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

	if (e->failed || seal_pool_flush(e->pool, true) || (e->in_place && later_tags(e, true))) {
		e->failed = true;
		return -1;
	}
	seal_image_get(t, "seal")->declared = true;
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
	seal_pool_free(e->pool);
	seal_ctx_free(&e->c);
	free(e->seen.v);
	free(e->q);
	pthread_mutex_destroy(&e->mu);
	pthread_cond_destroy(&e->sealed_cv);
	free(e);
}
