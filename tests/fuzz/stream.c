// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness: the stream frame reader (imgr_*) and the decoding of
 * every record it hands out, as stasis-inject and stasis-serialize read a
 * checkpoint stream; inputs of odd length through the read-ahead ring
 * (imgr_readahead), as stasis-inject reads, the others directly. Built with -DSTASIS_FUZZ=ON (bench/fuzz.sh).
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis-image/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	struct img_reader *r;
	struct img_frame f;
	unsigned idx = 0;
	uint32_t last_image = 0;

	if (fd < 0) {
		log_init("fuzz-stream");
		log_set_level(0);
		fd = memfd_create("fuzz-stream", MFD_CLOEXEC);
		if (fd < 0)
			return 0;
	}
	if (ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size ||
	    lseek(fd, 0, SEEK_SET) != 0)
		return 0;
	r = imgr_open(fd, "fuzz input");
	if (!r)
		return 0;
	if (size & 1)
		imgr_readahead(r);
	while (imgr_next(r, &f) > 0) {
		const ProtobufCMessageDescriptor *desc;
		ProtobufCMessage *msg;

		if (f.hdr.kind != FRAME_RECORD || !f.image)
			continue;
		/* records count per image, as the readers number them */
		idx = f.hdr.image == last_image ? idx + 1 : 0;
		last_image = f.hdr.image;
		desc = img_record_desc(f.image, idx);
		if (!desc)
			continue;
		msg = protobuf_c_message_unpack(desc, NULL, f.hdr.len, f.data);
		if (msg)
			protobuf_c_message_free_unpacked(msg, NULL);
	}
	imgr_free(r);
	return 0;
}
