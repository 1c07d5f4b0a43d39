/* lazymm GOFILE [SIZE_MB]
 *
 * What a task does to its memory while a lazy restore still fills it
 * (tests/lazy.bats): right after GO, before reading the rest, it forks (the
 * child must see the pages as they were at the fork, the parent its own
 * writes), moves a window with mremap (the data goes with it), unmaps a
 * window and maps fresh memory there, drops a window with
 * MADV_DONTNEED (both must read as zeros: no old page may be put back),
 * and has several threads fault the same and different pages at once.
 * Then everything else must hold its pattern. When the GO file contains
 * "expect-lazy", part of the region must still have been missing at GO
 * (mincore), so that the events did happen while the memory was lazy.
 */
#include "testprog.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define NTHREADS 6
/* windows, in MiB from the start of the region */
#define FORK_AT 1
#define FORK_MB 4
#define REMAP_AT 8
#define REMAP_MB 8
#define UNMAP_AT 20
#define UNMAP_MB 4
#define DROP_AT 28
#define DROP_MB 4
#define THREADS_AT 36
#define THREADS_MB 8
#define MIN_MB 48

static uint64_t *region;
static size_t words;
static uint64_t seed;
static pthread_barrier_t barrier;

#define MB_WORDS ((1u << 20) / sizeof(uint64_t))

static uint64_t want(size_t i)
{
	return tp_pattern(i, seed);
}

/* Words [from, to) of the region as seen at p (which held word from). */
static size_t check_words(const uint64_t *p, size_t from, size_t to, const char *what)
{
	size_t bad = 0;

	for (size_t i = from; i < to; i++)
		if (p[i - from] != want(i) && !bad++)
			tp_fail("%s: word %zu is %#llx, not %#llx", what, i,
				(unsigned long long)p[i - from], (unsigned long long)want(i));
	return bad;
}

static void check_zero(const uint64_t *p, size_t n, const char *what)
{
	for (size_t i = 0; i < n; i++)
		if (p[i]) {
			tp_fail("%s: word %zu is %#llx, not 0 (an old page came back)", what, i,
				(unsigned long long)p[i]);
			return;
		}
}

static void *thread_main(void *arg)
{
	long k = (long)arg;
	size_t base = THREADS_AT * MB_WORDS, n = THREADS_MB * MB_WORDS;
	uint64_t *bad = calloc(1, sizeof(*bad));

	pthread_barrier_wait(&barrier);
	/* all start at the same pages, then each its own part */
	for (size_t i = base; i < base + MB_WORDS / 4; i += 512)
		if (region[i] != want(i))
			(*bad)++;
	for (size_t i = base + (size_t)k * (n / NTHREADS); i < base + (size_t)(k + 1) * (n / NTHREADS);
	     i++)
		if (region[i] != want(i))
			(*bad)++;
	return bad;
}

static size_t missing_pages(void)
{
	size_t len = words * sizeof(uint64_t), pages = len / 4096, n = 0;
	unsigned char *vec = malloc(pages);

	if (mincore(region, len, vec))
		tp_die("mincore");
	for (size_t i = 0; i < pages; i++)
		n += !(vec[i] & 1);
	free(vec);
	return n;
}

int main(int argc, char **argv)
{
	size_t mb = 128, missing;
	pthread_t th[NTHREADS];
	uint64_t *moved, *fresh;
	char go[64] = "";
	pid_t child;
	int status;
	FILE *f;

	tp_init(argc, argv, 1, "GOFILE [SIZE_MB]");
	if (argc > 2)
		mb = strtoul(argv[2], NULL, 0);
	if (mb < MIN_MB)
		tp_die("SIZE_MB is at least %d", MIN_MB);
	seed = ((uint64_t)tp_pid << 32) ^ 0x1a270000ULL;
	words = mb * MB_WORDS;
	region = mmap(NULL, words * sizeof(uint64_t), PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED)
		tp_die("mmap %zu MiB", mb);
	/* no huge pages: the windows are cut at 4 KiB pages */
	madvise(region, words * sizeof(uint64_t), MADV_NOHUGEPAGE);
	for (size_t i = 0; i < words; i++)
		region[i] = want(i);
	/* where the moved window goes: reserved now, so the address is free */
	moved = mmap(NULL, REMAP_MB << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (moved == MAP_FAILED)
		tp_die("mmap target");
	tp_ready();
	tp_wait_go();

	/* first of all, before anything touches the region */
	missing = missing_pages();
	f = fopen(tp_gofile, "r");
	if (f) {
		if (!fgets(go, sizeof(go), f))
			go[0] = 0;
		fclose(f);
	}

	if (tp_sabotaged("fork"))
		region[FORK_AT * MB_WORDS + 7] ^= 1; /* as if the child saw later data */
	child = fork();
	if (child < 0)
		tp_die("fork");
	if (child == 0) {
		size_t bad = check_words(region + FORK_AT * MB_WORDS, FORK_AT * MB_WORDS,
					 (FORK_AT + FORK_MB) * MB_WORDS, "child");

		_exit(bad ? 1 : 0);
	}
	/* the parent writes what the child must not see */
	for (size_t i = FORK_AT * MB_WORDS; i < (FORK_AT + FORK_MB) * MB_WORDS; i += 509)
		region[i] = ~want(i);

	if (mremap(region + REMAP_AT * MB_WORDS, REMAP_MB << 20, REMAP_MB << 20,
		   MREMAP_MAYMOVE | MREMAP_FIXED, moved) != moved)
		tp_die("mremap");
	if (tp_sabotaged("remap"))
		moved[12345] ^= 1;

	if (munmap(region + UNMAP_AT * MB_WORDS, UNMAP_MB << 20))
		tp_die("munmap");
	fresh = mmap(region + UNMAP_AT * MB_WORDS, UNMAP_MB << 20, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (fresh != region + UNMAP_AT * MB_WORDS)
		tp_die("mmap over the unmapped window");
	if (tp_sabotaged("unmap"))
		fresh[4096] = 1;

	if (madvise(region + DROP_AT * MB_WORDS, DROP_MB << 20, MADV_DONTNEED))
		tp_die("madvise");
	if (tp_sabotaged("dontneed"))
		region[DROP_AT * MB_WORDS + 100] = 1;

	if (tp_sabotaged("threads"))
		region[THREADS_AT * MB_WORDS + 3 * 512] ^= 1;
	pthread_barrier_init(&barrier, NULL, NTHREADS);
	for (long k = 0; k < NTHREADS; k++)
		if (pthread_create(&th[k], NULL, thread_main, (void *)k))
			tp_die("pthread_create");
	for (long k = 0; k < NTHREADS; k++) {
		uint64_t *bad;

		pthread_join(th[k], (void **)&bad);
		if (*bad)
			tp_fail("thread %ld: %llu words wrong", k, (unsigned long long)*bad);
		free(bad);
	}

	/* now the checks of everything */
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status))
		tp_fail("the child forked at GO did not see the memory of the fork (status %#x)",
			status);
	for (size_t i = FORK_AT * MB_WORDS; i < (FORK_AT + FORK_MB) * MB_WORDS; i++)
		if (region[i] != (i % 509 == (FORK_AT * MB_WORDS) % 509 ? ~want(i) : want(i))) {
			tp_fail("parent: word %zu lost its write after the fork", i);
			break;
		}
	check_words(moved, REMAP_AT * MB_WORDS, (REMAP_AT + REMAP_MB) * MB_WORDS, "moved window");
	check_zero(fresh, UNMAP_MB * MB_WORDS, "memory mapped over the unmapped window");
	check_zero(region + DROP_AT * MB_WORDS, DROP_MB * MB_WORDS, "dropped window");
	check_words(region, 0, FORK_AT * MB_WORDS, "head");
	check_words(region + (FORK_AT + FORK_MB) * MB_WORDS, (FORK_AT + FORK_MB) * MB_WORDS,
		    REMAP_AT * MB_WORDS, "region");
	check_words(region + (REMAP_AT + REMAP_MB) * MB_WORDS, (REMAP_AT + REMAP_MB) * MB_WORDS,
		    UNMAP_AT * MB_WORDS, "region");
	check_words(region + (UNMAP_AT + UNMAP_MB) * MB_WORDS, (UNMAP_AT + UNMAP_MB) * MB_WORDS,
		    DROP_AT * MB_WORDS, "region");
	check_words(region + (DROP_AT + DROP_MB) * MB_WORDS, (DROP_AT + DROP_MB) * MB_WORDS, words,
		    "tail");
	if (!strncmp(go, "expect-lazy", 11)) {
		if (!missing)
			tp_fail("no page was missing at GO: the events did not meet lazy memory");
		printf("missing at GO: %zu pages\n", missing);
	}
	return tp_finish();
}
