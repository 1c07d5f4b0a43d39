// SPDX-License-Identifier: GPL-2.0
/*
 * The record images of the checkpoint, held in memory until the restore
 * ends (page data is not: it is written into the tasks as it streams by).
 * Records are grouped per image as they are loaded, and the images found
 * by name through a hash index, so that a lookup costs no scan.
 * Apart from main.c so that tests/fuzz/inject.c can load and check
 * records exactly as stasis-inject does, without restoring anything.
 */
#include <stdlib.h>
#include <string.h>

#include "inject.h"
#include "stasis/log.h"
#include "stasis/nameidx.h"
#include "stasis/util.h"

/* More than any real tree has; a bound on what a stream can make us hold. */
#define RECORDS_MAX 1000000

/* One record, packed as it came. */
struct rec {
	void *data;
	size_t len;
};

/* The records of one image, in stream order. */
struct rec_image {
	char *name; /* first: the name index reads it */
	struct rec *recs;
	size_t nr, cap;
};

static struct rec_image *images;
static size_t nr_images, cap_images;
static struct name_index index_by_name;
static size_t nr_recs; /* of every image */

static struct rec_image *image_find(const char *image)
{
	int64_t i = name_index_find(&index_by_name, images, sizeof(*images), image);

	return i < 0 ? NULL : &images[i];
}

static struct rec_image *image_add(const char *image)
{
	struct rec_image *ri;

	if (nr_images == cap_images) {
		cap_images = cap_images ? cap_images * 2 : 64;
		images = xrealloc(images, cap_images * sizeof(*images));
	}
	ri = &images[nr_images];
	*ri = (struct rec_image){ .name = xstrdup(image) };
	name_index_add(&index_by_name, images, sizeof(*images), nr_images);
	nr_images++;
	return ri;
}

unsigned records_count(const char *image)
{
	struct rec_image *ri = image_find(image);

	return ri ? ri->nr : 0;
}

void *records_get(const char *image, unsigned idx, const ProtobufCMessageDescriptor *desc)
{
	struct rec_image *ri = image_find(image);
	ProtobufCMessage *m;

	if (!ri || idx >= ri->nr)
		return NULL;
	m = protobuf_c_message_unpack(desc, NULL, ri->recs[idx].len, ri->recs[idx].data);
	if (!m)
		pr_err("%s: record is malformed (not a %s)", image, desc->name);
	return m;
}

int records_load(struct img_reader *r, struct img_frame *f)
{
	int ret;

	while ((ret = imgr_next(r, f)) > 0) {
		struct rec_image *ri;
		struct rec *rec;

		if (f->hdr.kind == FRAME_PAGES)
			return 1;
		if (f->hdr.kind != FRAME_RECORD)
			continue;
		if (nr_recs >= RECORDS_MAX) {
			pr_err("too many records in the checkpoint");
			return -1;
		}
		ri = image_find(f->image);
		if (!ri)
			ri = image_add(f->image);
		if (ri->nr == ri->cap) {
			ri->cap = ri->cap ? ri->cap * 2 : 8;
			ri->recs = xrealloc(ri->recs, ri->cap * sizeof(*ri->recs));
		}
		rec = &ri->recs[ri->nr++];
		rec->data = xmalloc(f->hdr.len);
		memcpy(rec->data, f->data, f->hdr.len);
		rec->len = f->hdr.len;
		nr_recs++;
	}
	return ret;
}

void records_free(void)
{
	for (size_t i = 0; i < nr_images; i++) {
		for (size_t j = 0; j < images[i].nr; j++)
			free(images[i].recs[j].data);
		free(images[i].recs);
		free(images[i].name);
	}
	free(images);
	images = NULL;
	nr_images = cap_images = 0;
	name_index_free(&index_by_name);
	nr_recs = 0;
}
