// SPDX-License-Identifier: GPL-2.0
/*
 * --lazy-pages: the two directions of a lazy migration on one connection.
 * The source listens (stasis dump --lazy-pages --port P): its stdin is the
 * page stream of stasis-collect (sealed or not), its stdout the requests
 * to it. The destination connects (stasis lazy-pages --page-server): its
 * stdin is the daemon's requests, its stdout the page stream for it.
 *
 * Both directions use the chunks of the stream protocol (u32 length +
 * data, a zero length ends that direction), each sent as soon as its data
 * is read, so that a request or a page never waits for more to come. The
 * bytes are passed on as they are; what they mean (LAZY_REQ_DONE, the
 * trailer) is for the two ends. A direction that breaks (the connection
 * cut, either end gone) closes the output without more: the source's
 * collect sees its requests end without LAZY_REQ_DONE and resumes the
 * tree, the daemon sees a page stream without a trailer and kills the
 * restored copy.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/util.h"

#include "transfer.h"

struct lazy_up {
	struct conn c; /* the session, for sending only */
	bool ended;    /* stdin ended and the end was sent */
	uint64_t bytes;
};

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = v;
	p[1] = v >> 8;
	p[2] = v >> 16;
	p[3] = v >> 24;
}

/* stdin -> the peer, chunk by chunk as the data comes. */
static void *lazy_send_thread(void *arg)
{
	struct lazy_up *up = arg;
	unsigned char *buf = xmalloc(XFER_CHUNK_MAX + 4);

	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf + 4, XFER_CHUNK_MAX);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			pr_perror("cannot read stdin");
			break;
		}
		put_le32(buf, n);
		if (conn_send(&up->c, buf, n + 4)) {
			pr_err("%s after %llu bytes", up->c.err, (unsigned long long)up->bytes);
			break;
		}
		if (!n) {
			up->ended = true;
			break;
		}
		up->bytes += n;
	}
	free(buf);
	return NULL;
}

int lazy_relay(struct conn *c, bool source)
{
	const char *in_what = source ? "page requests" : "lazy page stream";
	struct lazy_up up = { .c = *c };
	char *buf = xmalloc(XFER_CHUNK_MAX);
	uint64_t bytes = 0, start = now_ns();
	bool ended = false;
	pthread_t th;

	pr_info("lazy pages: connected with %s", c->peer);
	if (pthread_create(&th, NULL, lazy_send_thread, &up)) {
		pr_err("cannot start a thread");
		free(buf);
		return 1;
	}
	for (;;) {
		unsigned char hdr[4];
		uint32_t len;
		int r = conn_recv_full(c, hdr, 4);

		if (r <= 0) {
			pr_err("the %s from %s broke off after %llu bytes: %s", in_what, c->peer,
			       (unsigned long long)bytes, r ? c->err : "connection closed");
			break;
		}
		len = hdr[0] | hdr[1] << 8 | hdr[2] << 16 | (uint32_t)hdr[3] << 24;
		if (!len) {
			ended = true;
			break;
		}
		if (len > XFER_CHUNK_MAX) {
			pr_err("protocol error: %s sent a chunk of %u bytes", c->peer, len);
			break;
		}
		if (conn_recv_full(c, buf, len) != 1) {
			pr_err("the %s from %s broke off after %llu bytes: %s", in_what, c->peer,
			       (unsigned long long)bytes, c->err);
			break;
		}
		if (write_full(STDOUT_FILENO, buf, len)) {
			pr_perror("cannot pass the %s on", in_what);
			break;
		}
		bytes += len;
	}
	free(buf);
	/* the reader of our output learns at once whether it is complete */
	close(STDOUT_FILENO);
	if (!ended) {
		/* the other direction cannot complete either: the ends decide */
		shutdown(c->fd, SHUT_RDWR);
		_exit(1);
	}
	pthread_join(th, NULL);
	if (!up.ended) {
		pr_err("the %s to %s did not end cleanly", source ? "lazy page stream" : "page requests",
		       c->peer);
		return 1;
	}
	pr_info("lazy pages: %llu bytes sent, %llu received in %.3f s", (unsigned long long)up.bytes,
		(unsigned long long)bytes, (now_ns() - start) / 1e9);
	return 0;
}
