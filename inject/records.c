// SPDX-License-Identifier: GPL-2.0
/*
 * The record images of the checkpoint, held in memory until the restore
 * ends (page data is not: it is written into the tasks as it streams by).
 * Apart from main.c so that tests/fuzz/inject.c can load and check
 * records exactly as stasis-inject does, without restoring anything.
 */
#include <stdlib.h>
#include <string.h>

#include "inject.h"
#include "stasis/log.h"
#include "stasis/util.h"

/* More than any real tree has; a bound on what a stream can make us hold. */
#define RECORDS_MAX 1000000

static struct rec *recs;
static size_t nr_recs;

unsigned records_count(const char *image)
{
	unsigned n = 0;

	for (size_t i = 0; i < nr_recs; i++)
		n += !strcmp(recs[i].image, image);
	return n;
}

void *records_get(const char *image, unsigned idx, const ProtobufCMessageDescriptor *desc)
{
	for (size_t i = 0; i < nr_recs; i++) {
		ProtobufCMessage *m;

		if (strcmp(recs[i].image, image) || idx--)
			continue;
		m = protobuf_c_message_unpack(desc, NULL, recs[i].len, recs[i].data);
		if (!m)
			pr_err("%s: record is malformed (not a %s)", image, desc->name);
		return m;
	}
	return NULL;
}

int records_load(struct img_reader *r, struct img_frame *f)
{
	int ret;

	while ((ret = imgr_next(r, f)) > 0) {
		if (f->hdr.kind == FRAME_PAGES)
			return 1;
		if (f->hdr.kind != FRAME_RECORD)
			continue;
		if (nr_recs >= RECORDS_MAX) {
			pr_err("too many records in the checkpoint");
			return -1;
		}
		recs = xrealloc(recs, (nr_recs + 1) * sizeof(*recs));
		recs[nr_recs].image = xstrdup(f->image);
		recs[nr_recs].data = xmalloc(f->hdr.len);
		memcpy(recs[nr_recs].data, f->data, f->hdr.len);
		recs[nr_recs].len = f->hdr.len;
		nr_recs++;
	}
	return ret;
}

void records_free(void)
{
	for (size_t i = 0; i < nr_recs; i++) {
		free((char *)recs[i].image);
		free(recs[i].data);
	}
	free(recs);
	recs = NULL;
	nr_recs = 0;
}
