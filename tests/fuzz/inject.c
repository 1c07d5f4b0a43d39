// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness: a checkpoint stream loaded and checked as
 * stasis-inject does before it creates anything: its record store
 * (inject/records.c), the tree with each task's cores, mm and fs
 * (pstree_load), the pagemap of each live task and the checks of its
 * mappings, and every other record decoded as the restore would ask for it.
 * Nothing is restored.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../inject/inject.h"
#include "stasis/log.h"
#include "stasis-image/image.h"

/* opts: stasis-inject's defaults (inject/opts.c) */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every record of image, through records_get, with the type its place has. */
static void decode_image(const char *image)
{
	unsigned n = records_count(image);

	for (unsigned i = 0; i < n; i++) {
		const ProtobufCMessageDescriptor *desc = img_record_desc(image, i);
		ProtobufCMessage *m;

		if (!desc)
			continue;
		m = records_get(image, i, desc);
		if (m)
			protobuf_c_message_free_unpacked(m, NULL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	struct itree tree = { 0 };
	struct img_reader *r;
	struct img_frame f;
	static char seen[256][STASIS_IMAGE_NAME_MAX];
	size_t nr_seen = 0;

	if (fd < 0) {
		log_init("fuzz-inject");
		/* quiet, unless asked (to see why a seed is refused) */
		log_set_level(getenv("STASIS_FUZZ_LOG") ? atoi(getenv("STASIS_FUZZ_LOG")) : 0);
		fd = memfd_create("fuzz-inject", MFD_CLOEXEC);
		if (fd < 0)
			return 0;
	}
	if (ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size ||
	    lseek(fd, 0, SEEK_SET) != 0)
		return 0;
	r = imgr_open(fd, "fuzz input");
	if (!r)
		return 0;
	if (records_load(r, &f) < 0)
		goto out;

	if (!pstree_load(&tree)) {
		for (size_t i = 0; i < tree.nr; i++) {
			struct itask *t = &tree.tasks[i];

			if (!task_alive(t))
				continue;
			if (!mm_load_pagemap(t))
				mm_check_vmas(t);
			mm_free_pagemap(t);
		}
	}
	pstree_free(&tree);

	/* the images in the order they came, each once */
	imgr_free(r);
	if (lseek(fd, 0, SEEK_SET) != 0)
		goto done;
	r = imgr_open(fd, "fuzz input");
	if (!r)
		goto done;
	while (nr_seen < 256 && imgr_next(r, &f) > 0) {
		size_t i;

		if (f.hdr.kind != FRAME_RECORD || !f.image)
			continue;
		for (i = 0; i < nr_seen && strcmp(seen[i], f.image); i++)
			;
		if (i < nr_seen)
			continue;
		snprintf(seen[nr_seen++], STASIS_IMAGE_NAME_MAX, "%s", f.image);
		decode_image(f.image);
	}
out:
	imgr_free(r);
done:
	records_free();
	return 0;
}
