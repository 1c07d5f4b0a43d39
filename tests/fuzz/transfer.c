// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness: what a stasis-transfer receiver does with the bytes of
 * a plain (non-TLS) connection: the sender's greeting, the chunk framing
 * (conn_recv_chunk) up to the end of stream, and the checkpoint the chunks
 * carry, verified frame by frame to its trailer as the receiver verifies it
 * before it confirms. The input is what the sender sent, written whole
 * into one end of a socket pair (its send buffer raised to hold it; what
 * does not fit is cut off, as by a sender that died) before the receiver
 * reads the other: no thread, so that runs are deterministic and cheap.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../transfer/transfer.h"
#include "stasis/log.h"
#include "stasis/util.h"
#include "stasis-image/image.h"

/* conn.c needs none of the options, but they live with main.c */
struct xfer_opts xopts;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The largest input the send buffer is raised for (with room for the
 * kernel's accounting of each packet). */
#define SEND_MAX (4u << 20)

/* The sender's whole input, or as much as fits, then its end of stream. */
static void send_input(int fd, const uint8_t *data, size_t size)
{
	int room = 2 * SEND_MAX;

	/* SO_SNDBUFFORCE (root) passes the limit of SO_SNDBUF */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &room, sizeof(room)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &room, sizeof(room));
	while (size) {
		ssize_t n = send(fd, data, size, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n <= 0)
			break;
		data += n;
		size -= n;
	}
	shutdown(fd, SHUT_WR);
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
	int sv[2];

	if (stream_fd < 0) {
		log_init("fuzz-transfer");
		log_set_level(0);
		stream_fd = memfd_create("fuzz-transfer", MFD_CLOEXEC);
		buf = xmalloc(XFER_CHUNK_MAX);
		if (stream_fd < 0)
			return 0;
	}
	if (size > SEND_MAX)
		return 0;
	if (ftruncate(stream_fd, 0) || lseek(stream_fd, 0, SEEK_SET) != 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return 0;
	c.fd = sv[0];
	send_input(sv[1], data, size);
	receive(&c, stream_fd, buf);
	close(sv[0]);
	close(sv[1]);
	return 0;
}
