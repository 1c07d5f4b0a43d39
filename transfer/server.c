// SPDX-License-Identifier: GPL-2.0
/*
 * The receiver: one connection, one stream, to stdout.
 *
 *   network thread:  chunks from the connection -> a pipe
 *   main thread:     the pipe -> frame reader (imgr_next: every frame
 *                    checked, the trailer's count too) -> memory queue
 *   writer thread:   memory queue -> stdout
 *
 * The queue lets the receiver take the whole stream even when its consumer
 * waits (stasis-inject restoring on the same host waits until the source
 * tree is gone, which happens only once this side has confirmed). It holds
 * at most --max-buffer bytes; beyond that TCP pushes back on the sender.
 *
 * The trailer is what makes a checkpoint complete for the next program, so
 * it is held back until the sender has been told "OK" (or, with
 * --sink-ack-fd, it goes first and the consumer's own confirmation is
 * relayed): a stream the sender does not know was received never becomes
 * a complete checkpoint here.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/util.h"
#include "stasis-image/image.h"

#include "transfer.h"

/* ---- the memory queue between the checker and the writer ---- */

struct qitem {
	struct qitem *next;
	size_t len;
	char data[];
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t more, room;
	struct qitem *head, *tail;
	size_t bytes, peak;
	bool closed, failed;
	int err;
	uint64_t written;
} q = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .more = PTHREAD_COND_INITIALIZER,
    .room = PTHREAD_COND_INITIALIZER,
};

/* Queues a copy of a + b; -1 once the writer has failed. */
static int q_put(const void *a, size_t alen, const void *b, size_t blen)
{
	struct qitem *it = xmalloc(sizeof(*it) + alen + blen);

	it->next = NULL;
	it->len = alen + blen;
	memcpy(it->data, a, alen);
	if (blen)
		memcpy(it->data + alen, b, blen);
	pthread_mutex_lock(&q.lock);
	while (!q.failed && q.bytes && q.bytes + it->len > xopts.max_buffer)
		pthread_cond_wait(&q.room, &q.lock);
	if (q.failed) {
		pthread_mutex_unlock(&q.lock);
		free(it);
		return -1;
	}
	if (q.tail)
		q.tail->next = it;
	else
		q.head = it;
	q.tail = it;
	q.bytes += it->len;
	if (q.bytes > q.peak)
		q.peak = q.bytes;
	pthread_cond_signal(&q.more);
	pthread_mutex_unlock(&q.lock);
	return 0;
}

static void q_close(void)
{
	pthread_mutex_lock(&q.lock);
	q.closed = true;
	pthread_cond_signal(&q.more);
	pthread_mutex_unlock(&q.lock);
}

static void *writer(void *arg)
{
	(void)arg;
	for (;;) {
		struct qitem *it;
		int err = 0;

		pthread_mutex_lock(&q.lock);
		while (!q.head && !q.closed)
			pthread_cond_wait(&q.more, &q.lock);
		it = q.head;
		if (it) {
			q.head = it->next;
			if (!q.head)
				q.tail = NULL;
		}
		pthread_mutex_unlock(&q.lock);
		if (!it)
			return NULL;
		if (write_full(STDOUT_FILENO, it->data, it->len))
			err = errno ? errno : EIO;
		pthread_mutex_lock(&q.lock);
		q.bytes -= it->len;
		q.written += err ? 0 : it->len;
		if (err) {
			q.failed = true;
			q.err = err;
			/* drop the rest: the consumer is gone */
			while (q.head) {
				struct qitem *n = q.head->next;

				q.bytes -= q.head->len;
				free(q.head);
				q.head = n;
			}
			q.tail = NULL;
		}
		pthread_cond_signal(&q.room);
		pthread_mutex_unlock(&q.lock);
		free(it);
		if (err)
			return NULL;
	}
}

static bool q_failed(void)
{
	bool f;

	pthread_mutex_lock(&q.lock);
	f = q.failed;
	pthread_mutex_unlock(&q.lock);
	return f;
}

/* ---- the network thread ---- */

struct rx {
	struct conn *c;
	int pipe_w;
	bool ended;	      /* the sender's end of stream arrived */
	volatile bool halted; /* we stopped reading: what follows is not the sender's fault */
	char err[1024];
	uint64_t bytes;
};

static void *receiver(void *arg)
{
	struct rx *rx = arg;
	char *buf = xmalloc(XFER_CHUNK_MAX);

	for (;;) {
		uint32_t len;
		int r = conn_recv_chunk(rx->c, buf, &len);

		if (r == 0) {
			rx->ended = true;
			break;
		}
		if (r < 0) {
			if (!rx->halted)
				snprintf(rx->err, sizeof(rx->err), "%s", rx->c->err);
			break;
		}
		/* fails only when the checker gave up (and closed its end) */
		if (write_full(rx->pipe_w, buf, len))
			break;
		rx->bytes += len;
	}
	close(rx->pipe_w);
	rx->pipe_w = -1;
	free(buf);
	return NULL;
}

/* ---- one connection ---- */

static void send_error(struct conn *c, const char *what)
{
	char line[XFER_LINE_MAX];

	snprintf(line, sizeof(line) - 1, "ERROR %s", what);
	strcat(line, "\n");
	conn_send(c, line, strlen(line));
}

/* The plaintext greeting of a sender that does not speak TLS, or the TLS
 * handshake of one that does, where the other is expected. */
static int greet(struct conn *c)
{
	const char *hello = xopts.lazy ? XFER_LAZY_HELLO : XFER_HELLO;
	char buf[XFER_HELLO_LEN];
	ssize_t n;

	do
		n = recv(c->fd, buf, sizeof(buf), MSG_PEEK | MSG_WAITALL);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		snprintf(c->err, sizeof(c->err), "%s sent nothing%s", c->peer,
			 n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? " in time" : "");
		return -1;
	}
	if (xopts.tls) {
		if (n == XFER_HELLO_LEN && (!memcmp(buf, XFER_HELLO, XFER_HELLO_LEN) ||
					    !memcmp(buf, XFER_LAZY_HELLO, XFER_HELLO_LEN))) {
			send_error(c, "this receiver requires TLS: give the sender --tls");
			snprintf(c->err, sizeof(c->err),
				 "%s does not use TLS (this receiver requires it)", c->peer);
			return -1;
		}
		if (tls_handshake(c, true, NULL))
			return -1;
	} else if (buf[0] == 0x16) {
		/* a TLS handshake record: nothing we say would be understood */
		snprintf(c->err, sizeof(c->err),
			 "%s speaks TLS: start the receiver with --tls as well", c->peer);
		return -1;
	}
	if (conn_recv_full(c, buf, XFER_HELLO_LEN) != 1)
		return -1;
	if (memcmp(buf, hello, XFER_HELLO_LEN)) {
		bool other = !memcmp(buf, xopts.lazy ? XFER_HELLO : XFER_LAZY_HELLO, XFER_HELLO_LEN);

		snprintf(c->err, sizeof(c->err), "%s %s", c->peer,
			 !other	     ? "is not a stasis-transfer sender"
			 : xopts.lazy ? "sends a whole stream, not a lazy migration's requests"
				      : "is a lazy migration's destination (this receiver "
					"takes whole streams)");
		if (other)
			send_error(c, xopts.lazy ? "this is a lazy page server (--lazy-pages)"
						 : "this receiver takes whole streams, not "
						   "--lazy-pages");
		return -1;
	}
	return conn_send(c, "READY\n", 6);
}

/* Reads the local consumer's "OK" on --sink-ack-fd. */
static bool sink_confirmed(void)
{
	char buf[3];
	ssize_t n = read_full(xopts.sink_ack_fd, buf, 3);

	close(xopts.sink_ack_fd);
	xopts.sink_ack_fd = -1;
	return n == 3 && !memcmp(buf, "OK\n", 3);
}

/* The consumer's word on the link just queued: 'M' (more), 'L' (last) or 0. */
static char chain_word(void)
{
	char word[5];

	if (read_full(xopts.chain_fd, word, 5) != 5 ||
	    (memcmp(word, "MORE\n", 5) && memcmp(word, "LAST\n", 5)))
		return 0;
	return word[0];
}

static bool writer_started;
static pthread_t writer_thread;

/* One stream from c; with --chain-fd, *more says another link follows. */
static int receive(struct conn *c, bool *more)
{
	struct rx rx = {.c = c};
	struct img_reader *r = NULL;
	struct img_frame f;
	unsigned char trailer[sizeof(struct stasis_frame_hdr) + 8];
	pthread_t nt;
	int p[2], n = -1, ret = 1;
	bool checked = false, joined = false;
	char why[1200] = "";
	uint64_t start = now_ns();

	if (pipe2(p, O_CLOEXEC)) {
		pr_perror("cannot create a pipe");
		send_error(c, "the receiver cannot create a pipe");
		return 1;
	}
	pipe_grow(p[0]);
	pipe_grow(STDOUT_FILENO);
	rx.pipe_w = p[1];
	/* one writer for every link of a chain */
	if (!writer_started)
		pthread_create(&writer_thread, NULL, writer, NULL);
	writer_started = true;
	pthread_create(&nt, NULL, receiver, &rx);

	if (xopts.raw) {
		char *buf = xmalloc(XFER_CHUNK_MAX);
		ssize_t k;

		while ((k = read(p[0], buf, XFER_CHUNK_MAX)) != 0) {
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0 || q_put(buf, k, NULL, 0))
				break;
		}
		free(buf);
		checked = k == 0;
	} else {
		r = imgr_open(p[0], "the received stream");
		while ((n = imgr_next(r, &f)) == 1)
			if (q_put(&f.hdr, sizeof(f.hdr), f.data, f.hdr.len))
				break;
		if (n == 0) {
			/* the trailer, checked: kept until the sender knows */
			memcpy(trailer, &f.hdr, sizeof(f.hdr));
			memcpy(trailer + sizeof(f.hdr), f.data, 8);
			checked = true;
		}
	}
	/* stop the network thread if we gave up early */
	close(p[0]);
	if (!checked) {
		rx.halted = true;
		shutdown(c->fd, SHUT_RD);
	}
	pthread_join(nt, NULL);

	/* the first cause: a consumer that failed, a cut, a bad stream */
	if (q_failed())
		snprintf(why, sizeof(why), "the local consumer of the stream failed: %s",
			 strerror(q.err));
	else if (rx.err[0])
		snprintf(why, sizeof(why), "the stream is incomplete: %s after %llu bytes", rx.err,
			 (unsigned long long)rx.bytes);
	else if (!checked || !rx.ended)
		snprintf(why, sizeof(why), "the stream from %s is not a complete, valid checkpoint",
			 c->peer);
	if (why[0]) {
		pr_err("%s", why);
		send_error(c, why);
		goto out;
	}
	pr_info("received %llu bytes from %s in %.3f s%s", (unsigned long long)rx.bytes, c->peer,
		(now_ns() - start) / 1e9, xopts.raw ? "" : "; the checkpoint is complete");

	if (xopts.chain_fd >= 0) {
		char word;

		/* the link goes whole to the consumer, which judges it */
		if (q_put(trailer, sizeof(trailer), NULL, 0))
			goto consumer_failed;
		word = chain_word();
		if (!word) {
			pr_err("the consumer of the chain did not accept the link from %s; not "
			       "confirming it",
			       c->peer);
			send_error(c, "the receiving side refused this link of the chain");
			goto out;
		}
		if (conn_send(c, "OK\n", 3)) {
			pr_err("cannot confirm the link to %s: %s; dropping the chain", c->peer,
			       c->err);
			goto out;
		}
		if (word == 'M') {
			pr_info("link confirmed to %s; waiting for the next one", c->peer);
			*more = true;
			imgr_free(r);
			return 0;
		}
		/* the sender knows: now the chain may come to life */
		if (write_full(xopts.chain_fd, "SENT\n", 5)) {
			pr_perror("cannot tell the consumer of the chain");
			goto out;
		}
		q_close();
		pthread_join(writer_thread, NULL);
		joined = true;
		if (q_failed())
			goto consumer_failed;
		pipe_wait_drained(STDOUT_FILENO);
		close(STDOUT_FILENO);
		ret = 0;
		goto out;
	}

	if (xopts.sink_ack_fd >= 0) {
		/* the consumer confirms for us, once it has everything */
		if (!xopts.raw && q_put(trailer, sizeof(trailer), NULL, 0))
			goto consumer_failed;
		q_close();
		pthread_join(writer_thread, NULL);
		joined = true;
		/* end of input for the consumer, before we wait for its word */
		close(STDOUT_FILENO);
		if (q_failed())
			goto consumer_failed;
		if (!sink_confirmed()) {
			pr_err(
			    "the consumer of the stream did not confirm it; not confirming to %s",
			    c->peer);
			send_error(c, "the receiving side could not store the checkpoint");
			goto out;
		}
		if (conn_send(c, "OK\n", 3)) {
			pr_err("cannot confirm the stream to %s: %s", c->peer, c->err);
			goto out;
		}
		ret = 0;
		goto out;
	}

	if (q_failed())
		goto consumer_failed;
	if (conn_send(c, "OK\n", 3)) {
		/* the sender resumes its tree: this copy must not come to life */
		pr_err("cannot confirm the stream to %s: %s; dropping it", c->peer, c->err);
		goto out;
	}
	if (!xopts.raw && q_put(trailer, sizeof(trailer), NULL, 0)) {
		pr_err("the stream was confirmed to %s, but its consumer failed: %s", c->peer,
		       strerror(q.err));
		goto out;
	}
	q_close();
	pthread_join(writer_thread, NULL);
	joined = true;
	if (q_failed()) {
		pr_err("the stream was confirmed to %s, but its consumer failed: %s", c->peer,
		       strerror(q.err));
		goto out;
	}
	pipe_wait_drained(STDOUT_FILENO);
	close(STDOUT_FILENO);
	ret = 0;
	goto out;

consumer_failed:
	pr_err("the local consumer of the stream failed: %s", strerror(q.err));
	send_error(c, "the consumer of the stream on the receiving side failed");
out:
	if (!joined) {
		/* no trailer was queued: the consumer sees a truncated stream */
		q_close();
		pthread_join(writer_thread, NULL);
		close(STDOUT_FILENO);
	}
	imgr_free(r);
	pr_info("buffered at most %zu bytes", q.peak);
	return ret;
}

/*
 * A link of a chain received on --ps-socket: the socket stays for the next
 * sender's session. Its sender ends the TLS session (close_notify) and
 * sends nothing more, so reading up to that alert leaves the socket at the
 * next session's first byte.
 */
static int end_link_session(struct conn *c)
{
	struct timeval tv = {.tv_sec = 30}, none = {0};
	char buf[64];
	ssize_t n;

	if (c->tls) {
		setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		do
			n = gnutls_record_recv(c->tls, buf, sizeof(buf));
		while (n == GNUTLS_E_INTERRUPTED);
		setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
		if (n != 0 || c->roff != c->rlen) {
			pr_err("the sender of a link on --ps-socket did not end its TLS session "
			       "cleanly; no further link can follow on that socket");
			return -1;
		}
		gnutls_deinit(c->tls);
		c->tls = NULL;
	}
	free(c->rbuf);
	c->rbuf = NULL;
	return 0;
}

/* ---- listening ---- */

/*
 * Closing with unread input makes the kernel send a reset, which can
 * overtake our last words (a TLS alert, an ERROR line): let the sender
 * read them and close its end first.
 */
static void linger_close(struct conn *c)
{
	struct timeval tv = {.tv_sec = 1};
	char buf[4096];

	if (c->tls) {
		gnutls_deinit(c->tls);
		c->tls = NULL;
	}
	shutdown(c->fd, SHUT_WR);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (int i = 0; i < 256 && recv(c->fd, buf, sizeof(buf), 0) > 0; i++)
		;
	close(c->fd);
	c->fd = -1;
	free(c->rbuf);
	c->rbuf = NULL;
}

static int write_pidfile(const char *path, pid_t pid)
{
	FILE *f = fopen(path, "we");

	if (!f || fprintf(f, "%d", pid) < 0 || fclose(f)) {
		pr_perror("cannot write pidfile %s", path);
		return -1;
	}
	return 0;
}

/* Listening: tell whoever waits for it (--status-fd, --daemon, --pidfile). */
static int announce(void)
{
	if (xopts.status_fd >= 0) {
		if (write_full(xopts.status_fd, "\0", 1))
			pr_perror("cannot write to the status fd %d", xopts.status_fd);
		close(xopts.status_fd);
		xopts.status_fd = -1;
	}
	if (xopts.daemon) {
		pid_t pid = fork();
		int fd;

		if (pid < 0) {
			pr_perror("cannot fork the daemon");
			return -1;
		}
		if (pid > 0)
			_exit(xopts.pidfile && write_pidfile(xopts.pidfile, pid) ? 1 : 0);
		setsid();
		fd = open("/dev/null", O_RDONLY);
		if (fd >= 0 && fd != STDIN_FILENO) {
			dup2(fd, STDIN_FILENO);
			close(fd);
		}
		return 0;
	}
	return xopts.pidfile ? write_pidfile(xopts.pidfile, getpid()) : 0;
}

/* --lazy-pages, waiting for the destination: a page source that ended
 * (stasis-collect gave up, interrupted) ends the wait too. */
static bool lazy_source_gone(int lfd)
{
	for (;;) {
		struct pollfd p[2] = { { .fd = lfd, .events = POLLIN },
				       { .fd = STDIN_FILENO, .events = 0 } };

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		if (p[1].revents & (POLLHUP | POLLERR)) {
			pr_err("the lazy page source ended before a destination connected");
			return true;
		}
		if (p[0].revents)
			return false;
	}
}

int run_server(void)
{
	struct timeval tv = {.tv_sec = 30}, none = {0};
	char where[160] = "";
	int lfd = -1;

	if (isatty(STDOUT_FILENO)) {
		pr_err("the received stream goes to stdout, which is a terminal");
		return 1;
	}
	/* frames are queued in buffers of up to 4 MiB: from the heap, reused,
	 * rather than each mapped, faulted in and unmapped */
	mallopt(M_MMAP_THRESHOLD, 8 << 20);
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
	if (xopts.ps_socket < 0) {
		lfd = net_listen(xopts.listen_host, xopts.listen_port, where, sizeof(where));
		if (lfd < 0)
			return 1;
		pr_info("listening on %s%s", where, xopts.tls ? " (TLS)" : "");
	}
	if (!xopts.tls)
		pr_warn("no --tls: the stream arrives in the clear, from any sender, "
			"unencrypted and unauthenticated");
	if (announce())
		return 1;

	for (;;) {
		struct conn c = {.fd = -1};
		bool more;
		int ret;

		if (lfd >= 0 && xopts.lazy && lazy_source_gone(lfd))
			return 1;
		if (lfd >= 0) {
			c.fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			if (c.fd < 0) {
				if (errno == EINTR || errno == ECONNABORTED)
					continue;
				pr_perror("cannot accept a connection");
				return 1;
			}
		} else {
			c.fd = xopts.ps_socket;
		}
		net_tune(c.fd);
		net_peer_name(c.fd, c.peer, sizeof(c.peer));
		/* a sender that connects and says nothing must not block us */
		setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (greet(&c)) {
			pr_err("refused the connection from %s: %s", c.peer, c.err);
			linger_close(&c);
			if (lfd < 0)
				return 1;
			/* a refused sender does not end the wait for the real one */
			continue;
		}
		setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
		pr_info("receiving a %s from %s", xopts.chain_fd >= 0 ? "link of a chain" : "stream",
			c.peer);
		if (lfd >= 0 && xopts.chain_fd < 0)
			close(lfd);
		more = false;
		if (xopts.lazy)
			ret = lazy_relay(&c, true);
		else
			ret = receive(&c, &more);
		if (more && lfd < 0) {
			/* the next sender comes on the same socket */
			if (end_link_session(&c))
				return 1;
			continue;
		}
		conn_close(&c);
		if (more)
			continue;
		if (lfd >= 0 && xopts.chain_fd >= 0)
			close(lfd);
		return ret;
	}
}
