/*
 * dirtier GOFILE SIZE_MB [uffd | spin WSET_MB]: SIZE_MB of patterned anonymous memory, for
 * the iterative checkpoint tests (tests/predump.bats).
 *
 * Each page holds a pattern of its index and its generation. On SIGUSR1
 * the program writes a new generation into the next slice of pages (the
 * first signal: pages [0, SLICE), the second: [SLICE, 2 SLICE), ...) and
 * prints "DIRTIED N PAGES" once done; on SIGUSR2 it moves one page-sized
 * mapping elsewhere with mremap (and prints "MOVED"), so that the tracker
 * must not take the old contents of the new address from the parent; on
 * SIGWINCH it drops pages [2 SLICE, 3 SLICE) with MADV_DONTNEED (they
 * read as zero from then on) and prints "DROPPED". On GO every page must
 * hold its latest generation (or zeros).
 *
 * With "uffd", the program registers a userfaultfd of its own on a spare
 * mapping, as a program doing its own post-copy or write tracking would.
 * With "spin WSET_MB" (bench/predump.sh), it rewrites its first WSET_MB
 * without pause, page after page, each time with the next generation.
 *
 * Sabotage: "page" changes one page after GO, "moved" damages the lone
 * (moved or not) page.
 */
#include <signal.h>
#include <stdint.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <linux/userfaultfd.h>

#include "testprog.h"

#define PAGE 4096UL
#define SLICE 256

static volatile sig_atomic_t dirty_req, move_req, drop_req;

#define ZEROED (~0u) /* the page was dropped: it reads as zeros */

static void on_usr1(int sig)
{
	(void)sig;
	dirty_req++;
}

static void on_usr2(int sig)
{
	(void)sig;
	move_req++;
}

static void on_winch(int sig)
{
	(void)sig;
	drop_req++;
}

static void fill(unsigned char *p, unsigned long page, unsigned gen)
{
	unsigned long long *w = (unsigned long long *)p;

	for (size_t i = 0; i < PAGE / 8; i++)
		w[i] = tp_pattern(page * (PAGE / 8) + i, gen);
}

static int check(const unsigned char *p, unsigned long page, unsigned gen)
{
	const unsigned long long *w = (const unsigned long long *)p;

	for (size_t i = 0; i < PAGE / 8; i++)
		if (w[i] != (gen == ZEROED ? 0 : tp_pattern(page * (PAGE / 8) + i, gen)))
			return -1;
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long npages, next = 0;
	unsigned char *mem, *moved = NULL, *island;
	unsigned *gen;
	int done = 0, moves = 0, drops = 0;
	unsigned long spin = 0, spun = 0;

	tp_init(argc, argv, 2, "GOFILE SIZE_MB");
	npages = strtoul(argv[2], NULL, 10) * (1 << 20) / PAGE;
	if (!npages)
		tp_die("SIZE_MB must be at least 1");
	mem = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	gen = calloc(npages, sizeof(*gen));
	/* a lone page, with unmapped room either side, to be moved */
	island = mmap(NULL, 3 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED || !gen || island == MAP_FAILED)
		tp_die("cannot allocate %lu pages", npages);
	munmap(island, PAGE);
	munmap(island + 2 * PAGE, PAGE);
	island += PAGE;
	mprotect(island, PAGE, PROT_READ | PROT_WRITE);
	fill(island, 999999, 7);
	for (unsigned long i = 0; i < npages; i++)
		fill(mem + i * PAGE, i, 0);
	signal(SIGUSR1, on_usr1);
	signal(SIGUSR2, on_usr2);
	signal(SIGWINCH, on_winch);
	if (argc > 3 && !strcmp(argv[3], "uffd")) {
		long u = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
		struct uffdio_api api = { .api = UFFD_API };
		void *spare = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		struct uffdio_register reg = { { (unsigned long)spare, 16 * PAGE },
					       UFFDIO_REGISTER_MODE_MISSING, 0 };

		if (u < 0 || ioctl(u, UFFDIO_API, &api) || ioctl(u, UFFDIO_REGISTER, &reg))
			tp_die("cannot register a userfaultfd of my own");
	}
	if (argc > 4 && !strcmp(argv[3], "spin"))
		spin = strtoul(argv[4], NULL, 10) * (1 << 20) / PAGE;
	if (spin > npages)
		spin = npages;
	tp_ready();

	while (access(tp_gofile, F_OK) != 0) {
		struct timespec ts = { 0, 5 * 1000 * 1000 };

		/* a busy working set: about 4096 pages between two looks at GO */
		for (unsigned long n = 0; spin && n < 4096; n++, spun = (spun + 1) % spin) {
			gen[spun] = gen[spun] == ZEROED ? 1 : gen[spun] + 1;
			fill(mem + spun * PAGE, spun, gen[spun]);
		}
		if (spin)
			continue;

		if (dirty_req > done) {
			unsigned long n = 0;

			for (; n < SLICE && next < npages; n++, next++) {
				gen[next] = gen[next] == ZEROED ? 1 : gen[next] + 1;
				fill(mem + next * PAGE, next, gen[next]);
			}
			/* the slice wraps around: a later round rewrites pages
			 * a pre-dump already holds */
			if (next == npages)
				next = 0;
			done++;
			printf("DIRTIED %d %lu\n", done, n);
			fflush(stdout);
		}
		if (move_req > moves) {
			/* move the island to where no page of it was: the
			 * destination's old contents are nowhere */
			unsigned char *to = mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
						 -1, 0);

			moved = mremap(moved ? moved : island, PAGE, PAGE,
				       MREMAP_MAYMOVE | MREMAP_FIXED, to);
			if (moved == MAP_FAILED)
				tp_die("mremap");
			moves++;
			printf("MOVED %p\n", moved);
			fflush(stdout);
		}
		if (drop_req > drops) {
			for (unsigned long i = 2 * SLICE; i < 3 * SLICE && i < npages; i++)
				gen[i] = ZEROED;
			if (3 * SLICE <= npages)
				madvise(mem + 2 * SLICE * PAGE, SLICE * PAGE, MADV_DONTNEED);
			drops++;
			printf("DROPPED %d\n", drops);
			fflush(stdout);
		}
		nanosleep(&ts, NULL);
	}

	if (tp_sabotaged("page"))
		mem[(npages / 2) * PAGE + 100] ^= 1;
	if (tp_sabotaged("moved"))
		(moved ? moved : island)[10] ^= 1;
	for (unsigned long i = 0; i < npages; i++)
		if (check(mem + i * PAGE, i, gen[i])) {
			tp_fail("page %lu does not hold generation %u", i, gen[i]);
			break;
		}
	if (check(moved ? moved : island, 999999, 7))
		tp_fail("the %s page lost its contents", moved ? "moved" : "lone");
	return tp_finish();
}
