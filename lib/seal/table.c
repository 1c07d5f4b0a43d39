// SPDX-License-Identifier: GPL-2.0
/* The images of a checkpoint being sealed or opened: their kinds, the
 * table that finds them by name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stasis/log.h"
#include "stasis/util.h"

#include "seal-int.h"

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

struct simg *seal_image_find(const struct itable *t, const char *name)
{
	int64_t i = name_index_find(&t->index, t->names, sizeof(*t->names), name);

	return i < 0 ? NULL : t->v[i];
}

struct simg *seal_image_get(struct itable *t, const char *name)
{
	struct simg *img = seal_image_find(t, name);

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
	t->names = xrealloc(t->names, (t->nr + 1) * sizeof(*t->names));
	t->v[t->nr] = img;
	t->names[t->nr] = img->name;
	name_index_add(&t->index, t->names, sizeof(*t->names), t->nr++);
	return img;
}

void seal_images_free(struct itable *t)
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
	free(t->names);
	name_index_free(&t->index);
	memset(t, 0, sizeof(*t));
}

bool seal_page_frame_ok(const struct img_frame *f)
{
	return f->hdr.len && !(f->hdr.len % PAGE_SIZE) && !(f->hdr.offset % PAGE_SIZE) &&
	       f->hdr.len <= STASIS_PAGE_FRAME_SPAN;
}

char *seal_tags_name(const char *pages)
{
	size_t n = strlen(pages + 6) + 10;
	char *s = xmalloc(n);

	snprintf(s, n, "pagetags-%s", pages + 6);
	return s;
}
