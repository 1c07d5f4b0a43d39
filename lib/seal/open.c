// SPDX-License-Identifier: GPL-2.0
/* Opening a sealed checkpoint stream frame by frame (stasis-seal --open). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stasis/log.h"
#include "stasis/util.h"

#include "seal-int.h"

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
	const struct img_writer *recycle; /* seal_open_recycle */
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

void seal_open_recycle(struct seal_open *o, const struct img_writer *w)
{
	o->recycle = w;
}

const struct img_writer *seal_open_recycled(const struct seal_open *o)
{
	return o->recycle;
}

void seal_open_free(struct seal_open *o)
{
	if (!o)
		return;
	for (size_t i = 0; i < o->hold_nr; i++)
		free(o->hold[(o->hold_head + i) % o->hold_cap].data);
	free(o->hold);
	seal_pool_free(o->pool);
	seal_privkey_free(o->pk);
	seal_ctx_free(&o->c);
	free(o);
}

static int emit_data(struct seal_open *o, const struct stasis_frame_hdr *hdr, const char *image,
		     const void *data, uint32_t len, bool stable)
{
	struct img_frame f = {.hdr = *hdr, .image = image, .data = (void *)data, .stable = stable};

	f.hdr.len = len;
	return o->out(o->arg, &f);
}

static int emit(struct seal_open *o, const struct stasis_frame_hdr *hdr, const char *image,
		const void *data, uint32_t len)
{
	return emit_data(o, hdr, image, data, len, false);
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
	if (seal_unwrap(o->pk, c, &o->c.keys) || seal_ctx_start(&o->c))
		goto out;
	o->pool = seal_pool_new(&o->c, o->threads, true, open_emit, o);
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
	return emit_data(o, &j->hdr, j->img->name, j->data, j->hdr.len, j->stable);
}

/* One page frame whose tag is at the head of the image's queue: checked,
 * decrypted (in place) and handed out, in order. */
static int open_page_frame(struct seal_open *o, struct simg *img, const struct stasis_frame_hdr *h,
			   uint8_t *data, bool stable)
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
	if (seal_image_keys(&o->c, img))
		return -1;
	return seal_pool_submit(o->pool, img, h, data, t->tag, stable);
}

/* Page frames held for their tags, in order, as far as the tags go. */
static int drain_held(struct seal_open *o)
{
	while (o->hold_nr) {
		struct held *hd = &o->hold[o->hold_head];
		int ret;

		if (!hd->img->tag_nr)
			return 0;
		ret = open_page_frame(o, hd->img, &hd->hdr, hd->data, false);
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
	img = seal_image_get(&o->c.images, pname);
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
		img = seal_image_get(&o->c.images, si->name);
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
	if (seal_record_open(&o->c, img, idx, f->data, f->hdr.len, &len)) {
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
	if (!seal_page_frame_ok(f)) {
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
	return open_page_frame(o, img, &f->hdr, f->data, f->stable);
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
	img = seal_image_get(&o->c.images, f->image);
	if (!img)
		goto fail;
	/* what goes out goes out in order: the page frames under way first
	 * (tag records go nowhere, unless the meta images are wanted) */
	if (o->pool && h->kind != FRAME_PAGES &&
	    (img->kind != IK_TAGS || o->flags & SEAL_OPEN_META) && seal_pool_flush(o->pool, true))
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
	if (o->pool && seal_pool_flush(o->pool, true))
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
	seal = seal_image_find(t, "seal");
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

void seal_open_fail(struct seal_open *o)
{
	o->failed = true;
}
