/* aio GOFILE DIR
 *
 * Kernel aio contexts (raw io_setup/io_submit/io_getevents) on a file
 * DIR/aio.dat:
 *  - ring A (16 events): 3 writes completed and not reaped;
 *  - ring B (8 events): many writes submitted and reaped so that its tail
 *    wrapped around behind its head, 2 completions left unreaped;
 *  - ring C: never used.
 * After GO each ring is at the same address (its context handle), the
 * unreaped completions come out of io_getevents with their data and
 * results, in order, and no more; new requests complete on every ring;
 * io_destroy works.
 *
 * Sabotage (STASIS_SABOTAGE=reap): ring A loses one completion first.
 */
#include "testprog.h"

#include <fcntl.h>
#include <linux/aio_abi.h>
#include <sys/syscall.h>

struct ring_head {
	unsigned id, nr, head, tail;
};

static aio_context_t ctx_a, ctx_b, ctx_c;
static int fd;
static struct iocb cbs[64];
static char bufs[64][16];

static long io_setup(unsigned nr, aio_context_t *ctx)
{
	return syscall(SYS_io_setup, nr, ctx);
}

static long io_submit(aio_context_t ctx, long n, struct iocb **cbp)
{
	return syscall(SYS_io_submit, ctx, n, cbp);
}

static long io_getevents(aio_context_t ctx, long min, long max, struct io_event *ev)
{
	struct timespec ts = { 0, 0 };

	return syscall(SYS_io_getevents, ctx, min, max, ev, &ts);
}

/* One write of a 16-byte tag at slot i (of ring B: from 4 KiB on);
 * aio_data says which. */
static void submit(aio_context_t ctx, int i, unsigned long long tag)
{
	struct iocb *cb = &cbs[i % 64];

	snprintf(bufs[i % 64], sizeof(bufs[0]), "tag%012llu", tag);
	memset(cb, 0, sizeof(*cb));
	cb->aio_data = tag;
	cb->aio_lio_opcode = IOCB_CMD_PWRITE;
	cb->aio_fildes = fd;
	cb->aio_buf = (unsigned long)bufs[i % 64];
	cb->aio_nbytes = 16;
	cb->aio_offset = (i % 64) * 16 + (ctx == ctx_b ? 4096 : 0);
	if (io_submit(ctx, 1, &cb) != 1)
		tp_die("io_submit");
}

/* Waits until the ring has n completions to reap, without reaping them. */
static void wait_completions(aio_context_t ctx, unsigned n)
{
	const struct ring_head *r = (const void *)ctx;
	struct timespec ts = { 0, 1000 * 1000 };

	for (int i = 0; i < 5000; i++) {
		if ((r->tail + r->nr - r->head) % r->nr == n)
			return;
		nanosleep(&ts, NULL);
	}
	tp_die("the ring never got %u completions", n);
}

static void expect_events(const char *what, aio_context_t ctx, const unsigned long long *tags,
			  int n)
{
	struct io_event ev[16];
	long got = io_getevents(ctx, 0, 16, ev);

	if (got != n) {
		tp_fail("%s: %ld completions to reap, expected %d", what, got, n);
		return;
	}
	for (int i = 0; i < n; i++)
		if (ev[i].data != tags[i] || ev[i].res != 16)
			tp_fail("%s: completion %d is tag %llu res %lld, expected tag %llu res 16",
				what, i, (unsigned long long)ev[i].data, (long long)ev[i].res,
				tags[i]);
}

static void check_works(const char *what, aio_context_t ctx, unsigned long long tag)
{
	struct io_event ev;
	struct timespec ts = { 5, 0 };

	submit(ctx, 63, tag);
	if (syscall(SYS_io_getevents, ctx, 1, 1, &ev, &ts) != 1 || ev.data != tag)
		tp_fail("%s: a new request does not complete", what);
}

int main(int argc, char **argv)
{
	static const unsigned long long tags_a[] = { 101, 102, 103 }, tags_b[] = { 298, 299 };
	aio_context_t before_a, before_b, before_c;
	char path[4096], perms[5], mpath[256];
	struct io_event ev[16];

	tp_init(argc, argv, 2, "GOFILE DIR");
	snprintf(path, sizeof(path), "%s/aio.dat", argv[2]);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		tp_die("open %s", path);
	if (io_setup(16, &ctx_a) || io_setup(8, &ctx_b) || io_setup(4, &ctx_c))
		tp_die("io_setup");

	for (int i = 0; i < 3; i++)
		submit(ctx_a, i, tags_a[i]);
	wait_completions(ctx_a, 3);

	/* ring B: go round more than once, reaping all but the last two */
	{
		const struct ring_head *r = (const void *)ctx_b;
		/* head ends at the last slot, tail at the second */
		unsigned total = r->nr + 1;

		for (unsigned i = 0; i < total; i++) {
			submit(ctx_b, i, total - i <= 2 ? 300 - (total - i) : 200 + i);
			if (total - i > 2) {
				struct timespec ts = { 5, 0 };

				if (syscall(SYS_io_getevents, ctx_b, 1, 1, ev, &ts) != 1)
					tp_die("io_getevents on ring B");
			}
		}
		wait_completions(ctx_b, 2);
		if (r->tail >= r->head)
			tp_die("ring B did not wrap (head %u tail %u)", r->head, r->tail);
	}
	before_a = ctx_a;
	before_b = ctx_b;
	before_c = ctx_c;

	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("reap"))
		io_getevents(ctx_a, 1, 1, ev);
	if (ctx_a != before_a || ctx_b != before_b || ctx_c != before_c)
		tp_fail("the context handles changed");
	if (tp_maps_entry((void *)ctx_a, perms, NULL, mpath, sizeof(mpath)) ||
	    strcmp(mpath, "/[aio] (deleted)"))
		tp_fail("no aio ring mapped at %#lx (maps: '%s')", (unsigned long)ctx_a, mpath);
	expect_events("ring A", ctx_a, tags_a, 3);
	expect_events("ring B", ctx_b, tags_b, 2);
	expect_events("ring C", ctx_c, NULL, 0);
	check_works("ring A", ctx_a, 1001);
	check_works("ring B", ctx_b, 1002);
	check_works("ring C", ctx_c, 1003);
	if (pread(fd, path, 16, 0) != 16 || memcmp(path, "tag000000000101", 15))
		tp_fail("the file does not hold the first write");
	if (syscall(SYS_io_destroy, ctx_a) || syscall(SYS_io_destroy, ctx_b) ||
	    syscall(SYS_io_destroy, ctx_c))
		tp_fail("io_destroy: %s", strerror(errno));
	return tp_finish();
}
