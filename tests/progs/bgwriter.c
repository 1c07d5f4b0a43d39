/*
 * bgwriter GOFILE THREADS PAGES [MODE...]: writer threads that never stop
 * writing, for the background snapshot tests (tests/bgsnap.bats) and
 * bench/bgsnap.sh.
 *
 * Each thread owns a region of PAGES pages and a counter c kept in memory;
 * its loop is c++, then page[c % PAGES] is stamped whole with c. At any
 * instant between two iterations, page p holds the largest value <= c that
 * is p modulo PAGES, so after a restore every page can be checked against
 * the restored counter: a page copied after a later write holds a value
 * above c, a lost copy-before-write a stale one. A thread frozen in the
 * middle of a stamp finishes it after the restore, before it stops.
 *
 * MODE (any of them):
 *   fork      a thread forks children that scribble on each region and exit
 *   remap     a thread keeps moving a region of patterned pages back and
 *             forth with mremap (the pattern must be there at the end)
 *   dontneed  a thread keeps dropping a region with MADV_DONTNEED and
 *             filling it again with its generation, kept in memory
 *   unmap     a thread keeps unmapping a region and mapping it again, filled
 *             with its generation
 *   uffd      the program registers a userfaultfd of its own on spare pages
 *
 * SIGUSR1 prints "PAUSE <us>": the longest any writer went without a
 * completed iteration since the previous SIGUSR1 (the frozen time the
 * program saw), and starts measuring again.
 *
 * On GO every thread stops after its iteration and the main thread checks.
 * Sabotage: "page" puts a value above the counter in one page, "stale" puts
 * back an older value, "moved" and "dropped" damage the remap and dontneed
 * regions.
 */
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "testprog.h"

#define PAGE	    4096UL
#define MAX_THREADS 64
#define SIDE_PAGES  64 /* the remap, dontneed and unmap regions */

struct writer {
	uint64_t *counter; /* in its own page, in memory */
	unsigned char *pages;
	unsigned long n;
	uint64_t max_gap_ns;
};

static struct writer writers[MAX_THREADS];
static int nthreads;
static atomic_int stop, stopped;
static volatile sig_atomic_t pause_req;

static unsigned char *volatile moved; /* where the remap region is now */
static unsigned char *moved_a, *moved_b;
static unsigned char *dropped;
static volatile uint64_t *dropped_gen;
static unsigned char *unmapped;
static volatile uint64_t *unmapped_gen;

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void stamp(unsigned char *page, uint64_t v)
{
	uint64_t *w = (uint64_t *)page;

	for (size_t i = 0; i < PAGE / 8; i++)
		w[i] = v;
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint64_t last = mono_ns();

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		uint64_t c = *(volatile uint64_t *)w->counter + 1, now;

		*(volatile uint64_t *)w->counter = c;
		stamp(w->pages + (c % w->n) * PAGE, c);
		now = mono_ns();
		if (now - last > w->max_gap_ns)
			w->max_gap_ns = now - last;
		last = now;
	}
	atomic_fetch_add(&stopped, 1);
	return NULL;
}

static void *forker_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		pid_t c = fork();

		if (c == 0) {
			/* the child's writes are its own: none may reach the
			 * parent's checkpoint */
			for (int t = 0; t < nthreads; t++)
				for (unsigned long p = 0; p < writers[t].n && p < 16; p++)
					stamp(writers[t].pages + p * PAGE, ~0ull);
			_exit(0);
		}
		if (c > 0)
			waitpid(c, NULL, 0);
		usleep(2000);
	}
	atomic_fetch_add(&stopped, 1);
	return NULL;
}

static void fill_pattern(unsigned char *p, unsigned long n)
{
	uint64_t *w = (uint64_t *)p;

	for (size_t i = 0; i < n * PAGE / 8; i++)
		w[i] = tp_pattern(i, 77);
}

static void *mover_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		unsigned char *to = moved == moved_a ? moved_b : moved_a;

		unsigned char *from = moved;

		if (mremap(from, SIDE_PAGES * PAGE, SIDE_PAGES * PAGE,
			   MREMAP_MAYMOVE | MREMAP_FIXED, to) != to)
			tp_die("mremap");
		moved = to;
		/* keep the old place, so that no thread stack lands there */
		if (mmap(from, SIDE_PAGES * PAGE, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != from)
			tp_die("mmap");
		usleep(500);
	}
	atomic_fetch_add(&stopped, 1);
	return NULL;
}

static void *dropper_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		uint64_t g = *dropped_gen + 1;

		*dropped_gen = g;
		madvise(dropped, SIDE_PAGES * PAGE, MADV_DONTNEED);
		for (unsigned long p = 0; p < SIDE_PAGES; p++)
			stamp(dropped + p * PAGE, g);
		usleep(500);
	}
	atomic_fetch_add(&stopped, 1);
	return NULL;
}

static void *unmapper_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		uint64_t g = *unmapped_gen + 1;

		*unmapped_gen = g;
		munmap(unmapped, SIDE_PAGES * PAGE);
		if (mmap(unmapped, SIDE_PAGES * PAGE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != unmapped)
			tp_die("mmap");
		for (unsigned long p = 0; p < SIDE_PAGES; p++)
			stamp(unmapped + p * PAGE, g);
		usleep(500);
	}
	atomic_fetch_add(&stopped, 1);
	return NULL;
}

static void on_usr1(int sig)
{
	(void)sig;
	pause_req = 1;
}

static unsigned char *map_pages(unsigned long n)
{
	void *p = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		tp_die("mmap %lu pages", n);
	return p;
}

static bool has_mode(int argc, char **argv, const char *m)
{
	for (int i = 4; i < argc; i++)
		if (!strcmp(argv[i], m))
			return true;
	return false;
}

static void check_region(int t)
{
	struct writer *w = &writers[t];
	uint64_t c = *w->counter;
	int bad = 0;

	for (unsigned long p = 0; p < w->n; p++) {
		/* the largest value <= c that is p modulo n */
		uint64_t want = c >= p ? c - (c - p) % w->n : 0;
		const uint64_t *v = (const uint64_t *)(w->pages + p * PAGE);

		for (size_t i = 0; i < PAGE / 8; i++)
			if (v[i] != want) {
				if (bad++ < 3)
					tp_fail(
					    "thread %d page %lu word %zu holds %llu, expected %llu "
					    "(counter %llu)",
					    t, p, i, (unsigned long long)v[i],
					    (unsigned long long)want, (unsigned long long)c);
				break;
			}
	}
	if (bad > 3)
		tp_fail("thread %d: %d pages wrong in all", t, bad);
}

static void check_side(const char *what, const unsigned char *p, uint64_t gen)
{
	for (unsigned long pg = 0; pg < SIDE_PAGES; pg++) {
		const uint64_t *v = (const uint64_t *)(p + pg * PAGE);

		for (size_t i = 0; i < PAGE / 8; i++)
			if (v[i] != gen) {
				tp_fail("%s page %lu holds %llu, expected generation %llu", what,
					pg, (unsigned long long)v[i], (unsigned long long)gen);
				return;
			}
	}
}

int main(int argc, char **argv)
{
	pthread_t th[MAX_THREADS + 4];
	int nth = 0, helpers = 0;
	unsigned long npages;

	tp_init(argc, argv, 3, "THREADS PAGES [fork|remap|dontneed|unmap|uffd...]");
	nthreads = atoi(argv[2]);
	npages = strtoul(argv[3], NULL, 0);
	if (nthreads < 1 || nthreads > MAX_THREADS || npages < 2)
		tp_die("bad THREADS or PAGES");
	signal(SIGUSR1, on_usr1);
	for (int t = 0; t < nthreads; t++) {
		struct writer *w = &writers[t];
		unsigned char *m = map_pages(npages + 1);

		w->counter = (uint64_t *)m;
		w->pages = m + PAGE;
		w->n = npages;
		/* as if it had run n - 1 iterations: page p holds p */
		*w->counter = npages - 1;
		for (unsigned long p = 0; p < npages; p++)
			stamp(w->pages + p * PAGE, p);
	}
	if (has_mode(argc, argv, "remap")) {
		moved_a = map_pages(SIDE_PAGES);
		moved_b = mmap(NULL, SIDE_PAGES * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			       0); /* a place kept to move to */
		if (moved_b == MAP_FAILED)
			tp_die("mmap");
		fill_pattern(moved_a, SIDE_PAGES);
		moved = moved_a;
	}
	if (has_mode(argc, argv, "dontneed")) {
		unsigned char *m = map_pages(SIDE_PAGES + 1);

		dropped_gen = (volatile uint64_t *)m;
		dropped = m + PAGE;
	}
	if (has_mode(argc, argv, "unmap")) {
		unsigned char *m = map_pages(1);

		unmapped_gen = (volatile uint64_t *)m;
		unmapped = map_pages(SIDE_PAGES);
	}
	if (has_mode(argc, argv, "uffd")) {
		int u = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
		struct uffdio_api api = {.api = UFFD_API};
		unsigned char *spare = map_pages(4);
		struct uffdio_register reg = {
		    {(unsigned long)spare, 4 * PAGE}, UFFDIO_REGISTER_MODE_MISSING, 0};

		spare[0] = 1;
		if (u < 0 || ioctl(u, UFFDIO_API, &api) || ioctl(u, UFFDIO_REGISTER, &reg))
			tp_die("userfaultfd");
	}
	for (int t = 0; t < nthreads; t++)
		if (pthread_create(&th[nth++], NULL, writer_main, &writers[t]))
			tp_die("pthread_create");
	if (has_mode(argc, argv, "fork") && !pthread_create(&th[nth], NULL, forker_main, NULL))
		nth++, helpers++;
	if (moved && !pthread_create(&th[nth], NULL, mover_main, NULL))
		nth++, helpers++;
	if (dropped && !pthread_create(&th[nth], NULL, dropper_main, NULL))
		nth++, helpers++;
	if (unmapped && !pthread_create(&th[nth], NULL, unmapper_main, NULL))
		nth++, helpers++;
	tp_ready();

	struct timespec ts = {0, 5 * 1000 * 1000};

	while (access(tp_gofile, F_OK) != 0) {
		if (pause_req) {
			uint64_t max = 0;

			pause_req = 0;
			for (int t = 0; t < nthreads; t++) {
				if (writers[t].max_gap_ns > max)
					max = writers[t].max_gap_ns;
				writers[t].max_gap_ns = 0;
			}
			printf("PAUSE %llu\n", (unsigned long long)(max / 1000));
			fflush(stdout);
		}
		nanosleep(&ts, NULL);
	}
	atomic_store(&stop, 1);
	while (atomic_load(&stopped) < nthreads + helpers)
		nanosleep(&ts, NULL);

	if (tp_sabotaged("page"))
		stamp(writers[0].pages + ((*writers[0].counter + 1) % npages) * PAGE,
		      *writers[0].counter + 1);
	if (tp_sabotaged("stale")) {
		uint64_t c = *writers[0].counter;

		stamp(writers[0].pages + (c % npages) * PAGE, c > npages ? c - npages : 0);
	}
	if (moved && tp_sabotaged("moved"))
		moved[5] ^= 1;
	if (dropped && tp_sabotaged("dropped"))
		dropped[PAGE * 3] ^= 1;

	for (int t = 0; t < nthreads; t++)
		check_region(t);
	if (moved) {
		uint64_t *w = (uint64_t *)moved;

		for (size_t i = 0; i < SIDE_PAGES * PAGE / 8; i++)
			if (w[i] != tp_pattern(i, 77)) {
				tp_fail("moved region word %zu differs", i);
				break;
			}
	}
	if (dropped)
		check_side("dropped region", dropped, *dropped_gen);
	if (unmapped)
		check_side("unmapped region", unmapped, *unmapped_gen);
	return tp_finish();
}
