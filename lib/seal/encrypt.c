// SPDX-License-Identifier: GPL-2.0
/* Sealing a checkpoint stream frame by frame (stasis-seal --encrypt). */
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
	return seal_pool_submit(e->pool, img, &f->hdr, f->data, NULL);
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

	if (e->failed || seal_pool_flush(e->pool, true)) {
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
	free(e);
}
