/* lease GOFILE DIR
 *
 * File leases (F_SETLEASE), each on its own file in DIR:
 *   rd: a read lease on an O_RDONLY description, F_SETSIG SIGRTMIN+1;
 *   wr: a write lease on an O_WRONLY description;
 *   two: two O_RDONLY descriptions of one file, only the first leased;
 *   brk-rd: a read lease broken (an O_WRONLY open was refused): breaking
 *     to F_UNLCK;
 *   brk-wr: a write lease broken by an O_RDONLY open: breaking to F_RDLCK.
 * The break signals (SIGRTMIN) came before the dump, with their si_fd.
 * After GO: F_GETLEASE reads as before on every descriptor; no break signal
 * came again; an O_WRONLY open of rd is refused and its break signal names
 * rd's descriptor; the broken leases give way (F_SETLEASE F_UNLCK).
 */
#include "testprog.h"

#include <fcntl.h>
#include <signal.h>

enum { RD, WR, TWO, TWO_FREE, BRK_RD, BRK_WR, NFD };

static int fds[NFD];
static volatile sig_atomic_t breaks, last_fd = -1, rd_fd = -1;

static void on_break(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	breaks++;
	last_fd = si->si_fd;
}

static void on_rd(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	rd_fd = si->si_fd;
}

static int open_in(const char *dir, const char *name, int flags)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, flags | O_CREAT, 0644);
	if (fd < 0)
		tp_die("open %s", path);
	return fd;
}

/* Breaks fd's lease by opening its file with flags (refused, non-blocking). */
static void break_lease(int fd, int flags)
{
	char path[64];
	int other;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	other = open(path, flags | O_NONBLOCK);
	if (other >= 0 || errno != EWOULDBLOCK)
		tp_die("the open of leased fd %d was not refused", fd);
}

int main(int argc, char **argv)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	struct sigaction sa = { .sa_flags = SA_SIGINFO };
	int before[NFD], seen;

	tp_init(argc, argv, 2, "GOFILE DIR");
	sa.sa_sigaction = on_break;
	sigaction(SIGRTMIN, &sa, NULL);
	sa.sa_sigaction = on_rd;
	sigaction(SIGRTMIN + 1, &sa, NULL);
	fds[RD] = open_in(argv[2], "rd", O_RDONLY);
	fds[WR] = open_in(argv[2], "wr", O_WRONLY);
	fds[TWO] = open_in(argv[2], "two", O_RDONLY);
	fds[TWO_FREE] = open_in(argv[2], "two", O_RDONLY);
	fds[BRK_RD] = open_in(argv[2], "brk-rd", O_RDONLY);
	fds[BRK_WR] = open_in(argv[2], "brk-wr", O_WRONLY);
	if (fcntl(fds[RD], F_SETLEASE, F_RDLCK) || fcntl(fds[RD], F_SETSIG, SIGRTMIN + 1) ||
	    fcntl(fds[WR], F_SETLEASE, F_WRLCK) || fcntl(fds[TWO], F_SETLEASE, F_RDLCK) ||
	    fcntl(fds[BRK_RD], F_SETLEASE, F_RDLCK) || fcntl(fds[BRK_WR], F_SETLEASE, F_WRLCK) ||
	    fcntl(fds[BRK_RD], F_SETSIG, SIGRTMIN) || fcntl(fds[BRK_WR], F_SETSIG, SIGRTMIN))
		tp_die("F_SETLEASE");
	break_lease(fds[BRK_RD], O_WRONLY);
	for (int i = 0; i < 200 && last_fd != fds[BRK_RD]; i++)
		nanosleep(&ts, NULL);
	break_lease(fds[BRK_WR], O_RDONLY);
	for (int i = 0; i < 200 && last_fd != fds[BRK_WR]; i++)
		nanosleep(&ts, NULL);
	if (breaks != 2)
		tp_die("%d break signals, expected 2", (int)breaks);
	for (int i = 0; i < NFD; i++)
		before[i] = fcntl(fds[i], F_GETLEASE);
	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("lease"))
		fcntl(fds[RD], F_SETLEASE, F_UNLCK);
	for (int i = 0; i < NFD; i++) {
		int now = fcntl(fds[i], F_GETLEASE);

		if (now != before[i])
			tp_fail("F_GETLEASE of fd %d is %d, was %d", fds[i], now, before[i]);
	}
	nanosleep(&(struct timespec){ 0, 200 * 1000 * 1000 }, NULL);
	seen = breaks;
	if (seen != 2)
		tp_fail("%d break signals, not 2: a broken lease signalled again", seen);
	/* the read lease still stops a writer, and says which fd it is */
	{
		char path[64];
		int other;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[RD]);
		other = open(path, O_WRONLY | O_NONBLOCK);
		if (other >= 0 || errno != EWOULDBLOCK)
			tp_fail("the read lease did not stop a writer (%s)", strerror(errno));
		for (int i = 0; i < 200 && rd_fd < 0; i++)
			nanosleep(&ts, NULL);
		if (rd_fd != fds[RD])
			tp_fail("the break signal of the read lease names fd %d, not %d",
				(int)rd_fd, fds[RD]);
	}
	if (fcntl(fds[BRK_RD], F_SETLEASE, F_UNLCK) || fcntl(fds[BRK_RD], F_GETLEASE) != F_UNLCK)
		tp_fail("the lease broken to F_UNLCK did not give way");
	if (fcntl(fds[BRK_WR], F_SETLEASE, F_UNLCK) || fcntl(fds[BRK_WR], F_GETLEASE) != F_UNLCK)
		tp_fail("the lease broken to F_RDLCK did not give way (%s)", strerror(errno));
	return tp_finish();
}
