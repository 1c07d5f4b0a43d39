// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness: what a stasis-transfer receiver does with the bytes of
 * a plain (non-TLS) connection: the sender's greeting, the chunk framing
 * (conn_recv_chunk) up to the end of stream, and the checkpoint the chunks
 * carry, verified frame by frame to its trailer as the receiver verifies it
 * before it confirms. The input is what the sender sent; a thread plays the
 * sender over a socket pair.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../transfer/transfer.h"
#include "stasis/image.h"
#include "stasis/log.h"
#include "stasis/util.h"

/* conn.c needs none of the options, but they live with main.c */
struct xfer_opts xopts;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sender {
	int fd;
	const uint8_t *data;
	size_t size;
};

static void *send_all(void *arg)
{
	struct sender *s = arg;

	while (s->size) {
		ssize_t n = send(s->fd, s->data, s->size, MSG_NOSIGNAL);

		if (n <= 0)
			break;
		s->data += n;
		s->size -= n;
	}
	shutdown(s->fd, SHUT_WR);
	return NULL;
}

static void receive(struct conn *c, int stream_fd, char *buf)
{
	char hello[XFER_HELLO_LEN];
	struct img_reader *r;
	struct img_frame f;
	uint32_t len;
	int n;

	if (conn_recv_full(c, hello, sizeof(hello)) != 1 ||
	    memcmp(hello, XFER_HELLO, XFER_HELLO_LEN))
		return;
	while ((n = conn_recv_chunk(c, buf, &len)) == 1)
		if (write_full(stream_fd, buf, len))
			return;
	if (n < 0 || lseek(stream_fd, 0, SEEK_SET) != 0)
		return;
	r = imgr_open(stream_fd, "the received stream");
	while (imgr_next(r, &f) == 1)
		;
	imgr_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int stream_fd = -1;
	static char *buf;
	struct conn c = { .fd = -1, .peer = "the fuzz sender" };
	struct sender s = { .data = data, .size = size };
	pthread_t th;
	int sv[2];

	if (stream_fd < 0) {
		log_init("fuzz-transfer");
		log_set_level(0);
		stream_fd = memfd_create("fuzz-transfer", MFD_CLOEXEC);
		buf = xmalloc(XFER_CHUNK_MAX);
		if (stream_fd < 0)
			return 0;
	}
	if (ftruncate(stream_fd, 0) || lseek(stream_fd, 0, SEEK_SET) != 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return 0;
	c.fd = sv[0];
	s.fd = sv[1];
	if (pthread_create(&th, NULL, send_all, &s)) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	receive(&c, stream_fd, buf);
	/* a receiver that gave up early: the sender's writes fail now */
	shutdown(sv[0], SHUT_RDWR);
	pthread_join(th, NULL);
	close(sv[0]);
	close(sv[1]);
	return 0;
}
