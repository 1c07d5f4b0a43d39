// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness: the opener of sealed streams (lib/seal/open.c), as
 * `stasis-seal --open` and `stasis-serialize show --tls-key` run it: the
 * cipher image, the wrapped keys, the sealed records, page frames and their
 * tags, the summary and the trailer. The key is the test key checked in
 * under tests/fuzz/keys (its certificate sealed the seeds).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis-image/image.h"
#include "stasis-seal/seal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The last image a record was handed out of, and how many it had. */
struct taken {
	char image[STASIS_IMAGE_NAME_MAX];
	unsigned idx;
};

/* What a consumer of the opened stream is handed: decoded as it would. */
static int take(void *arg, const struct img_frame *f)
{
	struct taken *t = arg;
	const ProtobufCMessageDescriptor *desc;
	ProtobufCMessage *m;

	if (f->hdr.kind != FRAME_RECORD || !f->image)
		return 0;
	if (strcmp(t->image, f->image)) {
		snprintf(t->image, sizeof(t->image), "%s", f->image);
		t->idx = 0;
	}
	desc = img_record_desc(f->image, t->idx++);
	m = desc ? protobuf_c_message_unpack(desc, NULL, f->hdr.len, f->data) : NULL;
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	struct taken taken = { "", 0 };

	if (fd < 0) {
		log_init("fuzz-seal");
		log_set_level(0);
		fd = memfd_create("fuzz-seal", MFD_CLOEXEC);
		if (fd < 0)
			return 0;
	}
	if (ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size ||
	    lseek(fd, 0, SEEK_SET) != 0)
		return 0;
	seal_open_fd(fd, "fuzz input", FUZZ_KEY, 0, take, &taken);
	return 0;
}
