// SPDX-License-Identifier: GPL-2.0
/* A single record image file: see include/stasis-image/imgfile.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/util.h"
#include "stasis-image/image.h"
#include "stasis-image/imgfile.h"

int imgfile_write_record(const char *path, const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg), n = strlen(path) + 8;
	uint8_t *buf = xmalloc(8 + 4 + len);
	char *tmp = xmalloc(n);
	uint32_t len32 = len;
	int fd, ret = -1;

	memcpy(buf, STASIS_IMG_MAGIC, 8);
	memcpy(buf + 8, &len32, 4);
	protobuf_c_message_pack(msg, buf + 12);
	snprintf(tmp, n, "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		pr_perror("cannot create %s", tmp);
		goto out;
	}
	if (write_full(fd, buf, 12 + len) || fsync(fd)) {
		pr_perror("cannot write %s", tmp);
		close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	if (rename(tmp, path)) {
		pr_perror("cannot rename %s to %s", tmp, path);
		unlink(tmp);
		goto out;
	}
	ret = 0;
out:
	free(tmp);
	free(buf);
	return ret;
}

ProtobufCMessage *imgfile_read_record(const char *path, const ProtobufCMessageDescriptor *desc,
				      int missing_ok)
{
	ProtobufCMessage *m = NULL;
	char magic[8];
	uint32_t len;
	void *buf;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		if (!(missing_ok && errno == ENOENT))
			pr_perror("cannot open %s", path);
		return NULL;
	}
	if (read_full(fd, magic, 8) != 8 || memcmp(magic, STASIS_IMG_MAGIC, 8)) {
		pr_err("%s: not a stasis image file", path);
		goto out;
	}
	if (read_full(fd, &len, 4) != 4) {
		pr_err("%s: holds no record", path);
		goto out;
	}
	if (len > STASIS_FRAME_MAX) {
		pr_err("%s: its first record claims %u bytes", path, len);
		goto out;
	}
	buf = xmalloc(len);
	if (read_full(fd, buf, len) != (ssize_t)len)
		pr_err("%s: its first record is truncated", path);
	else if (!(m = protobuf_c_message_unpack(desc, NULL, len, buf)))
		pr_err("%s: its first record is not a valid %s", path, desc->name);
	free(buf);
out:
	close(fd);
	return m;
}
