// SPDX-License-Identifier: GPL-2.0
/* I/O on a connection, the same calls with and without TLS. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/util.h"

#include "transfer.h"

static void set_err(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

static void tls_err(struct conn *c, int ret)
{
	if (ret == GNUTLS_E_FATAL_ALERT_RECEIVED || ret == GNUTLS_E_WARNING_ALERT_RECEIVED)
		set_err(c, "%s sent the TLS alert '%s'", c->peer,
			gnutls_alert_get_name(gnutls_alert_get(c->tls)));
	else if (ret == GNUTLS_E_PREMATURE_TERMINATION || ret == GNUTLS_E_PULL_ERROR ||
		 ret == GNUTLS_E_PUSH_ERROR)
		set_err(c, "the connection with %s was cut", c->peer);
	else
		set_err(c, "TLS error with %s: %s", c->peer, gnutls_strerror(ret));
}

#define RBUF_SIZE (256u << 10)

/* GnuTLS reads a record header, then its body: two system calls per 16 KiB
 * record without this read-ahead, which made the receiver the bottleneck. */
static ssize_t tls_pull(gnutls_transport_ptr_t p, void *data, size_t len)
{
	struct conn *c = p;
	size_t k;

	if (c->roff == c->rlen) {
		ssize_t n;

		do
			n = recv(c->fd, c->rbuf, RBUF_SIZE, 0);
		while (n < 0 && errno == EINTR);
		if (n <= 0) {
			if (n < 0)
				gnutls_transport_set_errno(c->tls, errno);
			return n;
		}
		c->roff = 0;
		c->rlen = n;
	}
	k = c->rlen - c->roff < len ? c->rlen - c->roff : len;
	memcpy(data, c->rbuf + c->roff, k);
	c->roff += k;
	return k;
}

static int tls_pull_timeout(gnutls_transport_ptr_t p, unsigned int ms)
{
	struct conn *c = p;
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};

	if (c->roff < c->rlen)
		return 1;
	return poll(&pfd, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);
}

static ssize_t tls_vec_push(gnutls_transport_ptr_t p, const giovec_t *iov, int n)
{
	struct conn *c = p;
	/* giovec_t is laid out as struct iovec */
	struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = n};
	ssize_t r = sendmsg(c->fd, &m, MSG_NOSIGNAL);

	if (r < 0)
		gnutls_transport_set_errno(c->tls, errno);
	return r;
}

static ssize_t tls_push(gnutls_transport_ptr_t p, const void *data, size_t len)
{
	giovec_t v = {.iov_base = (void *)data, .iov_len = len};

	return tls_vec_push(p, &v, 1);
}

void conn_tls_transport(struct conn *c)
{
	if (!c->rbuf)
		c->rbuf = xmalloc(RBUF_SIZE);
	c->roff = c->rlen = 0;
	gnutls_transport_set_ptr(c->tls, c);
	gnutls_transport_set_pull_function(c->tls, tls_pull);
	gnutls_transport_set_pull_timeout_function(c->tls, tls_pull_timeout);
	gnutls_transport_set_push_function(c->tls, tls_push);
	gnutls_transport_set_vec_push_function(c->tls, tls_vec_push);
}

ssize_t conn_recv(struct conn *c, void *buf, size_t len)
{
	ssize_t n;

	if (c->tls) {
		do
			n = gnutls_record_recv(c->tls, buf, len);
		while (n == GNUTLS_E_INTERRUPTED);
		/* blocking sockets: "again" is SO_RCVTIMEO running out */
		if (n == GNUTLS_E_AGAIN) {
			set_err(c, "%s did not answer in time", c->peer);
			return -1;
		}
		if (n < 0) {
			tls_err(c, n);
			return -1;
		}
		return n;
	}
	do
		n = recv(c->fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			set_err(c, "%s did not answer in time", c->peer);
		else if (errno == ECONNRESET)
			set_err(c, "the connection with %s was cut (reset)", c->peer);
		else
			set_err(c, "cannot receive from %s: %s", c->peer, strerror(errno));
		return -1;
	}
	return n;
}

int conn_recv_full(struct conn *c, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = conn_recv(c, (char *)buf + got, len - got);

		if (n < 0)
			return -1;
		if (n == 0) {
			if (!got)
				return 0;
			set_err(c, "the connection with %s ended in the middle of a message",
				c->peer);
			return -1;
		}
		got += n;
	}
	return 1;
}

static uint32_t get_le32(const unsigned char *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

int conn_recv_chunk(struct conn *c, void *buf, uint32_t *len)
{
	unsigned char hdr[4];
	int r = conn_recv_full(c, hdr, 4);

	if (r <= 0) {
		if (!r)
			set_err(c, "the sender closed the connection");
		return -1;
	}
	*len = get_le32(hdr);
	if (!*len)
		return 0;
	if (*len > XFER_CHUNK_MAX) {
		set_err(c, "protocol error: a chunk of %u bytes", *len);
		return -1;
	}
	return conn_recv_full(c, buf, *len) == 1 ? 1 : -1;
}

int conn_send(struct conn *c, const void *buf, size_t len)
{
	const char *p = buf;

	if (c->tls && len > 16384) {
		ssize_t n;

		/* the records of a chunk leave in a few large writes */
		gnutls_record_cork(c->tls);
		while (len) {
			n = gnutls_record_send(c->tls, p, len);
			if (n == GNUTLS_E_INTERRUPTED)
				continue;
			if (n < 0)
				break;
			p += n;
			len -= n;
		}
		do
			n = gnutls_record_uncork(c->tls, GNUTLS_RECORD_WAIT);
		while (n == GNUTLS_E_INTERRUPTED);
		if (len || n < 0) {
			tls_err(c, n < 0 ? n : GNUTLS_E_PUSH_ERROR);
			return -1;
		}
		return 0;
	}
	while (len) {
		ssize_t n;

		if (c->tls) {
			n = gnutls_record_send(c->tls, p, len);
			if (n == GNUTLS_E_INTERRUPTED)
				continue;
			if (n < 0) {
				tls_err(c, n);
				return -1;
			}
		} else {
			n = send(c->fd, p, len, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				if (errno == EPIPE || errno == ECONNRESET)
					set_err(c, "the connection with %s was cut", c->peer);
				else
					set_err(c, "cannot send to %s: %s", c->peer,
						strerror(errno));
				return -1;
			}
		}
		p += n;
		len -= n;
	}
	return 0;
}

int conn_recv_line(struct conn *c, char *line, size_t len)
{
	size_t n = 0;

	/* byte by byte: nothing after the line may be consumed */
	for (;;) {
		char ch;
		ssize_t r = conn_recv(c, &ch, 1);

		if (r < 0)
			return -1;
		if (r == 0) {
			set_err(c, "%s closed the connection", c->peer);
			return -1;
		}
		if (ch == '\n')
			break;
		if (n + 1 >= len || n + 1 >= XFER_LINE_MAX) {
			set_err(c, "%s sent an overlong line", c->peer);
			return -1;
		}
		line[n++] = (ch >= 0x20 && ch < 0x7f) ? ch : '?';
	}
	line[n] = '\0';
	return 0;
}

void conn_close(struct conn *c)
{
	if (c->tls) {
		struct timeval tv = {.tv_sec = 5};

		/* close_notify: the peer tells our end from a cut connection;
		 * a peer that stopped reading must not hold us here */
		setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		gnutls_bye(c->tls, GNUTLS_SHUT_WR);
		gnutls_deinit(c->tls);
		c->tls = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->rbuf);
	c->rbuf = NULL;
}
