/*
 * pty GOFILE: a pseudo-terminal pair inside the tree. The parent holds the
 * master; a child in its own session has the slave as its controlling
 * terminal and stdin/stdout, with its own settings (no echo, VEOF ^G) and a
 * 33x77 window; it answers every line in upper case. After restore: the pair
 * still talks, with the same index, settings, window size, controlling
 * terminal and foreground group.
 * A second pair, both ends in the parent, has data queued both ways at the
 * dump (two typed lines waiting for the slave's reader, their echo and a
 * line the slave wrote waiting for the master's): after restore each end
 * reads exactly what it would have read.
 */
#include <ctype.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>

#include "testprog.h"

static pid_t child;

/* Send a line to the master, collect the answer line (up to 3 s). */
static void exchange(int m, const char *msg, char *out, size_t n)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	size_t got = 0;

	if (write(m, msg, strlen(msg)) != (ssize_t)strlen(msg))
		tp_fail("write to the master: %s", strerror(errno));
	for (int i = 0; i < 300 && (got == 0 || out[got - 1] != '\n'); i++) {
		ssize_t r = read(m, out + got, n - got - 1);

		if (r > 0)
			got += r;
		else
			nanosleep(&ts, NULL);
	}
	out[got] = 0;
}

static void child_main(const char *name, int m)
{
	struct termios t;
	char buf[256];
	int s;

	setsid();
	s = open(name, O_RDWR);
	if (s < 0 || ioctl(s, TIOCSCTTY, 0))
		_exit(3);
	dup2(s, 0);
	dup2(s, 1);
	close(s);
	close(m);
	tcgetattr(0, &t);
	t.c_lflag &= ~ECHO;
	t.c_cc[VEOF] = 7;
	tcsetattr(0, TCSANOW, &t);
	while (fgets(buf, sizeof(buf), stdin)) {
		for (char *p = buf; *p; p++)
			*p = toupper((unsigned char)*p);
		fputs(buf, stdout);
		fflush(stdout);
	}
	_exit(0);
}

int main(int argc, char **argv)
{
	struct winsize ws = { 33, 77, 0, 0 }, w2;
	char name[64], out[256], link[64] = "", path[64];
	struct termios t;
	int m, s;

	tp_init(argc, argv, 0, "");
	m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0 || grantpt(m) || unlockpt(m))
		tp_die("posix_openpt");
	snprintf(name, sizeof(name), "%s", ptsname(m));
	ioctl(m, TIOCSWINSZ, &ws);
	child = fork();
	if (child == 0)
		child_main(name, m);
	fcntl(m, F_SETFL, O_NONBLOCK);
	usleep(200000);
	exchange(m, "hello\n", out, sizeof(out));
	if (strncmp(out, "HELLO", 5))
		tp_die("the child does not answer: [%s]", out);
	/* the second pair, with queued data */
	static const char typed[] = "typed one\ntyped two\n";
	static const char seen[] = "typed one\r\ntyped two\r\nfrom slave\r\n";
	int m2 = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK), s2;
	char name2[64], got[256];
	ssize_t n;

	if (m2 < 0 || grantpt(m2) || unlockpt(m2))
		tp_die("posix_openpt 2");
	snprintf(name2, sizeof(name2), "%s", ptsname(m2));
	s2 = open(name2, O_RDWR | O_NOCTTY | O_NONBLOCK);
	if (s2 < 0 || write(m2, typed, strlen(typed)) != (ssize_t)strlen(typed))
		tp_die("queue data in %s", name2);
	/* The line discipline echoes from a work queue: let the echo reach
	 * the master before the slave writes, so the order is fixed. */
	for (int i = 0, avail = 0; i < 3000; i++) {
		if (ioctl(m2, FIONREAD, &avail) || avail >= (int)strlen(seen) - 12)
			break;
		usleep(1000);
	}
	if (write(s2, "from slave\n", 11) != 11)
		tp_die("queue data in %s", name2);
	usleep(100000);

	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("queued"))
		n = read(s2, got, sizeof(got));
	n = read(s2, got, sizeof(got) - 1);
	got[n > 0 ? n : 0] = 0;
	if (strcmp(got, "typed one\n"))
		tp_fail("the slave reads [%s] first, not the first typed line", got);
	n = read(s2, got, sizeof(got) - 1);
	got[n > 0 ? n : 0] = 0;
	if (strcmp(got, "typed two\n"))
		tp_fail("the slave reads [%s] second, not the second typed line", got);
	n = read(m2, got, sizeof(got) - 1);
	got[n > 0 ? n : 0] = 0;
	if (strcmp(got, seen))
		tp_fail("the master reads [%s], not the echo and the slave's line", got);

	if (tp_sabotaged("winsize")) {
		ws.ws_row = 1;
		ioctl(m, TIOCSWINSZ, &ws);
	}
	exchange(m, "again\n", out, sizeof(out));
	if (strncmp(out, "AGAIN", 5))
		tp_fail("the child answers [%s] instead of AGAIN", out);
	if (strcmp(ptsname(m), name))
		tp_fail("the master's slave is %s, was %s", ptsname(m), name);
	if (ioctl(m, TIOCGWINSZ, &w2) || w2.ws_row != 33 || w2.ws_col != 77)
		tp_fail("window is %dx%d, was 33x77", w2.ws_row, w2.ws_col);
	s = open(name, O_RDWR | O_NOCTTY);
	if (s < 0 || tcgetattr(s, &t) || (t.c_lflag & ECHO) || t.c_cc[VEOF] != 7)
		tp_fail("the terminal settings changed");
	if (s >= 0)
		close(s);
	if (tcgetsid(m) != child)
		tp_fail("the terminal's session is %d, was %d", (int)tcgetsid(m), (int)child);
	if (tcgetpgrp(m) != child)
		tp_fail("the foreground group is %d, was %d", (int)tcgetpgrp(m), (int)child);
	snprintf(path, sizeof(path), "/proc/%d/fd/0", (int)child);
	if (readlink(path, link, sizeof(link) - 1) < 0 || strcmp(link, name))
		tp_fail("the child's stdin is %s, was %s", link, name);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return tp_finish();
}
