// SPDX-License-Identifier: GPL-2.0
/*
 * The sender: stdin to the receiver, then the receiver's verdict to
 * --ack-fd. "OK" goes to the ack channel only when the receiver confirmed
 * the whole stream; on any failure the channel is closed without a word,
 * so that stasis-collect resumes the tree instead of killing it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/util.h"

#include "transfer.h"

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = v;
	p[1] = v >> 8;
	p[2] = v >> 16;
	p[3] = v >> 24;
}

/* After a failed send: the receiver may have said why before it closed. */
static void report_receiver_reason(struct conn *c)
{
	struct timeval tv = {.tv_sec = 2};
	char line[XFER_LINE_MAX];

	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (!conn_recv_line(c, line, sizeof(line)) && !strncmp(line, "ERROR ", 6))
		pr_err("the receiver %s refused the stream: %s", c->peer, line + 6);
}

static int connect_peer(struct conn *c)
{
	if (xopts.ps_socket >= 0) {
		c->fd = xopts.ps_socket;
		net_tune(c->fd);
		if (xopts.to_host)
			snprintf(c->peer, sizeof(c->peer), "%s", xopts.to_host);
		else
			net_peer_name(c->fd, c->peer, sizeof(c->peer));
		return 0;
	}
	snprintf(c->peer, sizeof(c->peer), strchr(xopts.to_host, ':') ? "[%s]:%s" : "%s:%s",
		 xopts.to_host, xopts.to_port);
	c->fd = net_connect(xopts.to_host, xopts.to_port);
	return c->fd < 0 ? -1 : 0;
}

int run_client(void)
{
	struct conn c = {.fd = -1};
	unsigned char *buf = NULL;
	char line[XFER_LINE_MAX];
	uint64_t total = 0, start;
	int ret = 1;

	if (isatty(STDIN_FILENO)) {
		pr_err("the stream to send is read on stdin, which is a terminal");
		goto out;
	}
	if (connect_peer(&c))
		goto out;
	if (xopts.tls) {
		if (tls_handshake(&c, false, xopts.to_host)) {
			pr_err("%s", c.err);
			goto out;
		}
	} else {
		pr_warn("no --tls: the stream goes to %s in the clear, unencrypted and "
			"unauthenticated",
			c.peer);
	}
	if (conn_send(&c, xopts.lazy ? XFER_LAZY_HELLO : XFER_HELLO, XFER_HELLO_LEN) ||
	    conn_recv_line(&c, line, sizeof(line))) {
		if (c.tls && strstr(c.err, "alert"))
			pr_err("the receiver refused the connection: %s (is our certificate "
			       "trusted by it and not revoked? see its log)",
			       c.err);
		else
			pr_err("%s", c.err);
		goto out;
	}
	if (strcmp(line, "READY")) {
		pr_err("the receiver %s refused the connection: %s", c.peer,
		       strncmp(line, "ERROR ", 6) ? line : line + 6);
		goto out;
	}
	if (xopts.lazy) {
		ret = lazy_relay(&c, false);
		goto out;
	}
	pr_info("connected to %s; sending the stream", c.peer);

	/* Each chunk is read right behind room for its header: one send. */
	buf = xmalloc(XFER_CHUNK_MAX + 4);
	start = now_ns();
	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf + 4, XFER_CHUNK_MAX);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			/* no end of stream: the receiver must not take it as complete */
			pr_perror("cannot read the stream on stdin");
			goto out;
		}
		put_le32(buf, n);
		if (conn_send(&c, buf, n + 4)) {
			pr_err("%s after %llu bytes", c.err, (unsigned long long)total);
			report_receiver_reason(&c);
			goto out;
		}
		if (!n)
			break;
		total += n;
	}
	pr_info("sent %llu bytes in %.3f s; waiting for the receiver's confirmation",
		(unsigned long long)total, (now_ns() - start) / 1e9);

	if (conn_recv_line(&c, line, sizeof(line))) {
		pr_err("no confirmation from the receiver: %s", c.err);
		goto out;
	}
	if (strcmp(line, "OK")) {
		pr_err("the receiver %s did not confirm the stream: %s", c.peer,
		       strncmp(line, "ERROR ", 6) ? line : line + 6);
		goto out;
	}
	{
		double s = (now_ns() - start) / 1e9;

		pr_info("the receiver confirmed %llu bytes in %.3f s (%.1f MiB/s)",
			(unsigned long long)total, s, s > 0 ? total / s / (1 << 20) : 0.0);
	}
	if (xopts.ack_fd >= 0) {
		if (write_full(xopts.ack_fd, "OK\n", 3)) {
			pr_perror("cannot write the acknowledgement to fd %d", xopts.ack_fd);
			goto out;
		}
	}
	ret = 0;
out:
	if (xopts.ack_fd >= 0)
		close(xopts.ack_fd);
	xopts.ack_fd = -1;
	conn_close(&c);
	free(buf);
	return ret;
}
