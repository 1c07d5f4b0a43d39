// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/pty.h"
#include "stasis/util.h"

#define PTY_QUEUE_MAX (1 << 20)

/* Reads what FIONREAD announces, without ever blocking on a shared
 * (possibly blocking) description. */
static int take(int fd, void **buf, size_t *len)
{
	int avail = 0;

	*buf = NULL;
	*len = 0;
	while (!ioctl(fd, FIONREAD, &avail) && avail > 0) {
		ssize_t n;

		if (*len + avail > PTY_QUEUE_MAX) {
			pr_err("more than %d bytes queued in a terminal", PTY_QUEUE_MAX);
			return -1;
		}
		*buf = xrealloc(*buf, *len + avail);
		n = read(fd, (char *)*buf + *len, avail);
		if (n <= 0) {
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				break;
			break;
		}
		*len += n;
	}
	return 0;
}

static void wait_queued(int fd, size_t len)
{
	struct timespec ts = { 0, 1000 * 1000 };
	int avail = 0;

	for (int i = 0; len && i < 2000; i++) {
		if (ioctl(fd, FIONREAD, &avail) || (size_t)avail >= len)
			return;
		nanosleep(&ts, NULL);
	}
	pr_warn("a terminal took in %d of %zu queued bytes", avail, len);
}

int pty_drain(int master, int slave, void **in, size_t *in_len, void **out, size_t *out_len)
{
	if (take(master, out, out_len) || take(slave, in, in_len)) {
		free(*out);
		*out = NULL;
		*out_len = 0;
		return -1;
	}
	return 0;
}

int pty_refill(int master, int slave, const void *in, size_t in_len, const void *out,
	       size_t out_len)
{
	struct termios orig, quiet;
	int ret = 0;

	if (!in_len && !out_len)
		return 0;
	if (tcgetattr(slave, &orig)) {
		pr_perror("cannot read terminal settings");
		return -1;
	}
	quiet = orig;
	quiet.c_lflag &= ~(ECHO | ECHOE | ECHOK | ECHONL | ISIG | IEXTEN);
	quiet.c_iflag &= ~(ICRNL | INLCR | IGNCR | ISTRIP | IXON | IUCLC);
	quiet.c_oflag &= ~OPOST;
	if (tcsetattr(slave, TCSANOW, &quiet)) {
		pr_perror("cannot quiet the terminal");
		return -1;
	}
	if ((in_len && write_full(master, in, in_len)) ||
	    (out_len && write_full(slave, out, out_len))) {
		pr_perror("cannot queue data in a terminal");
		ret = -1;
	}
	/* The line discipline takes the bytes in later, from a work queue:
	 * the quiet settings must last until it has. */
	wait_queued(slave, in_len);
	wait_queued(master, out_len);
	if (tcsetattr(slave, TCSANOW, &orig)) {
		pr_perror("cannot restore terminal settings");
		ret = -1;
	}
	return ret;
}
