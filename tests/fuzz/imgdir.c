// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness: the reader of image directories. The input is a set
 * of files, each as a name length (1 byte), the name, a data length (4
 * bytes, little-endian) and the data (tests/fuzz/make-corpus.sh writes
 * directories so); they are written to a directory on a tmpfs, which is
 * then read as `stasis-serialize pack` reads it (imgdir_pack), or, when it
 * holds cipher.img, opened as a sealed directory with the test key
 * (seal_open_dir, as `stasis-seal --open -D` does).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/util.h"
#include "stasis-image/image.h"
#include "stasis-seal/seal.h"

#define FILES_MAX 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void clear_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	while (d && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(dirfd(d), de->d_name, 0);
	if (d)
		closedir(d);
}

static void remove_dir(void)
{
	clear_dir();
	rmdir(dir);
}

static int discard(void *arg, const struct img_frame *f)
{
	(void)arg;
	(void)f;
	return 0;
}

/* A name a directory can hold as one plain file. */
static bool file_name_ok(const char *name)
{
	return name[0] && strcmp(name, ".") && strcmp(name, "..") && !strchr(name, '/');
}

static void write_files(const uint8_t *data, size_t size)
{
	for (int n = 0; n < FILES_MAX && size > 0; n++) {
		char name[256];
		size_t nlen = data[0];
		uint32_t len;
		int fd;

		if (size < 1 + nlen + 4)
			return;
		memcpy(name, data + 1, nlen);
		name[nlen] = 0;
		memcpy(&len, data + 1 + nlen, 4);
		data += 1 + nlen + 4;
		size -= 1 + nlen + 4;
		if (len > size)
			len = size;
		if (file_name_ok(name) && strlen(name) == nlen) {
			fd = openat(AT_FDCWD, dir, O_PATH | O_DIRECTORY);
			if (fd >= 0) {
				int f = openat(fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

				if (f >= 0) {
					/* a short file is an input too */
					write_full(f, data, len);
					close(f);
				}
				close(fd);
			}
		}
		data += len;
		size -= len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct img_writer *w;

	if (!dir[0]) {
		log_init("fuzz-imgdir");
		log_set_level(0);
		snprintf(dir, sizeof(dir), "/dev/shm/stasis-fuzz-imgdir.%d", getpid());
		if (mkdir(dir, 0700) && errno != EEXIST)
			abort();
		atexit(remove_dir);
	}
	clear_dir();
	write_files(data, size);
	if (seal_dir_sealed(dir) == 1) {
		seal_open_dir(dir, FUZZ_KEY, 0, discard, NULL);
		return 0;
	}
	w = imgw_open_sink(discard, NULL);
	if (!imgdir_pack(dir, w))
		imgw_finish(w);
	imgw_free(w);
	return 0;
}
