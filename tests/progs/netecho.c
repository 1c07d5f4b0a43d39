/*
 * netecho GOFILE ADDR PORT: a TCP echo server for one client outside the
 * tree (tests/netstream.py), who streams the counted sequence of 32-bit
 * big-endian integers 0, 1, 2, ... and checks the echo.
 *
 * Listens on ADDR:PORT (v4 or v6), prints READY, accepts one connection and
 * echoes every byte back while checking that what arrives is exactly the
 * sequence (nothing lost, repeated or reordered across a migration). Once
 * GOFILE exists and the client has ended its stream (EOF), it closes the
 * connection and reports.
 *
 * Sabotage "echo": after GO one received byte is dropped (neither checked
 * nor echoed), so both this check and the client's see a hole.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>

#include "testprog.h"

static uint64_t offset;	/* bytes of the sequence received so far */
static uint64_t first_bad = UINT64_MAX;

static uint8_t sequence_byte(uint64_t off)
{
	uint32_t n = (uint32_t)(off / 4);

	return (uint8_t)(n >> (8 * (3 - off % 4)));
}

static void check_bytes(const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++, offset++)
		if (first_bad == UINT64_MAX && buf[i] != sequence_byte(offset))
			first_bad = offset;
}

static void send_all(int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			tp_fail("echo: send failed after %llu bytes: %s", (unsigned long long)offset,
				strerror(errno));
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

static int listen_on(const char *addr, int port)
{
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
	struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct sockaddr *sa;
	socklen_t len;
	int fd, one = 1;

	if (inet_pton(AF_INET, addr, &a4.sin_addr) == 1) {
		sa = (struct sockaddr *)&a4;
		len = sizeof(a4);
	} else if (inet_pton(AF_INET6, addr, &a6.sin6_addr) == 1) {
		sa = (struct sockaddr *)&a6;
		len = sizeof(a6);
	} else {
		errno = EINVAL;
		tp_die("not an address: %s", addr);
	}
	fd = socket(sa->sa_family, SOCK_STREAM, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, sa, len) || listen(fd, 1))
		tp_die("listen on %s port %d", addr, port);
	return fd;
}

/*
 * Memory of its own, written: a checkpoint much bigger than a pipe. With
 * a small one, the whole stream may be written before the source's PIDs
 * are free, and stasis-inject --wait-pids-free (restore --remote in one
 * PID namespace) takes the closed pipe for a failed transfer.
 */
static uint8_t ballast[32 << 20];

int main(int argc, char **argv)
{
	static uint8_t buf[65536];
	struct pollfd p = {.events = POLLIN};
	int lfd, conn = -1, sabotage_done = 0;
	int go = 0;

	tp_init(argc, argv, 3, "GOFILE ADDR PORT");
	for (size_t i = 0; i < sizeof(ballast); i += 8)
		*(unsigned long long *)(ballast + i) = tp_pattern(i / 8, 1);
	lfd = listen_on(argv[2], atoi(argv[3]));
	tp_ready();

	p.fd = lfd;
	for (;;) {
		ssize_t n;

		if (poll(&p, 1, 100) < 0) {
			if (errno == EINTR)
				continue;
			tp_die("poll");
		}
		if (!go)
			go = access(tp_gofile, F_OK) == 0;
		if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		if (conn < 0) {
			conn = accept(lfd, NULL, NULL);
			if (conn < 0)
				tp_die("accept");
			close(lfd);
			p.fd = conn;
			continue;
		}
		n = recv(conn, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			tp_fail("recv failed after %llu bytes: %s", (unsigned long long)offset,
				strerror(errno));
			break;
		}
		if (n == 0) {
			if (!access(tp_gofile, F_OK))
				go = 1;
			if (!go)
				tp_fail("the client ended its stream before GO (%llu bytes)",
					(unsigned long long)offset);
			break;
		}
		if (go && !sabotage_done && tp_sabotaged("echo")) {
			sabotage_done = 1;
			memmove(buf, buf + 1, (size_t)--n);
		}
		check_bytes(buf, (size_t)n);
		send_all(conn, buf, (size_t)n);
		if (tp_nfail)
			break;
	}
	if (conn >= 0)
		close(conn);
	if (first_bad != UINT64_MAX)
		tp_fail("byte %llu of the stream is not the counted sequence's",
			(unsigned long long)first_bad);
	if (offset % 4)
		tp_fail("the stream ended inside a number (%llu bytes)", (unsigned long long)offset);
	if (!offset)
		tp_fail("nothing was received");
	if (!tp_nfail)
		printf("echoed %llu bytes\n", (unsigned long long)offset);
	return tp_finish();
}
