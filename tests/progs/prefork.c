/* prefork GOFILE [SIZE_MB [NCHILD]]
 *
 * A pre-forked server (issue 3, and bench/pss.sh): the parent fills SIZE_MB
 * MiB (default 32) of private anonymous memory with a per-word pattern, then
 * forks NCHILD children (default 4) that only read it, so that the pages
 * stay shared copy-on-write. A restore that lost that sharing would give
 * every task its own copy: the total PSS of the tree would grow about
 * NCHILD + 1 times (tests/trees.bats and bench/pss.sh measure it).
 *
 * READY once every child has read all the data once. After GO (a flag the
 * parent raises in a MAP_SHARED|MAP_ANONYMOUS page), every child reads all
 * the data again and checks every word, the parent too; the children exit 0
 * when their data is intact and the parent reaps them.
 *
 * STASIS_SABOTAGE: mem (the last child damages its copy before checking).
 */
#include "testprog.h"

#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define MAXCHILD 64

struct shared {
	volatile int go;
	volatile int ready[MAXCHILD];
	volatile uint64_t sum[MAXCHILD];
	volatile long bad[MAXCHILD];
};

static struct shared *sh;
static uint64_t *data, seed;
static size_t words;

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static uint64_t sum_all(void)
{
	uint64_t s = 0;

	for (size_t i = 0; i < words; i++)
		s += data[i];
	return s;
}

static long count_bad(size_t *first)
{
	long bad = 0;

	for (size_t i = 0; i < words; i++)
		if (data[i] != (tp_pattern(i, seed) | 1) && !bad++)
			*first = i;
	return bad;
}

int main(int argc, char **argv)
{
	size_t mb = 32, first = 0;
	int nchild = 4, st;
	pid_t kids[MAXCHILD];
	long bad;

	tp_init(argc, argv, 1, "GOFILE [SIZE_MB [NCHILD]]");
	if (argc > 2)
		mb = strtoul(argv[2], NULL, 0);
	if (argc > 3)
		nchild = atoi(argv[3]);
	if (!mb || nchild < 1 || nchild > MAXCHILD) {
		fprintf(stderr, "SETUP: bad SIZE_MB or NCHILD\n");
		return 2;
	}
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		tp_die("mmap shared");
	words = (mb << 20) / sizeof(uint64_t);
	data = mmap(NULL, words * sizeof(uint64_t), PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (data == MAP_FAILED)
		tp_die("mmap %zu MiB", mb);
	seed = (uint64_t)tp_pid << 20;
	for (size_t i = 0; i < words; i++)
		data[i] = tp_pattern(i, seed) | 1;

	for (int c = 0; c < nchild; c++) {
		kids[c] = fork();
		if (kids[c] < 0)
			tp_die("fork");
		if (kids[c] == 0) {
			sh->sum[c] = sum_all();
			__atomic_store_n(&sh->ready[c], 1, __ATOMIC_RELEASE);
			while (!__atomic_load_n(&sh->go, __ATOMIC_ACQUIRE))
				nap_ms(10);
			if (c == nchild - 1 && tp_sabotaged("mem"))
				data[words / 2] ^= 2;
			sh->bad[c] = count_bad(&first);
			if (sh->bad[c] == 0 && sum_all() != sh->sum[c])
				sh->bad[c] = -1;
			__atomic_store_n(&sh->ready[c], 2, __ATOMIC_RELEASE);
			_exit(sh->bad[c] ? 1 : 0);
		}
	}
	for (int c = 0; c < nchild; c++) {
		for (int i = 0; i < 60000 && !__atomic_load_n(&sh->ready[c], __ATOMIC_ACQUIRE); i++)
			nap_ms(1);
		if (!sh->ready[c])
			tp_die("child %d did not read the data", c);
	}

	tp_ready();
	tp_wait_go();

	__atomic_store_n(&sh->go, 1, __ATOMIC_RELEASE);
	bad = count_bad(&first);
	if (bad)
		tp_fail("parent: %ld of %zu words differ, the first at word %zu", bad, words,
			first);
	for (int c = 0; c < nchild; c++) {
		st = 0;
		if (waitpid(kids[c], &st, 0) != kids[c])
			tp_fail("waitpid(child %d, %d): %s", c, (int)kids[c], strerror(errno));
		else if (sh->ready[c] != 2)
			tp_fail("child %d (%d) ended (status %#x) without checking", c,
				(int)kids[c], st);
		else if (sh->bad[c] < 0)
			tp_fail("child %d (%d): the data's sum changed", c, (int)kids[c]);
		else if (sh->bad[c] > 0)
			tp_fail("child %d (%d): %ld of %zu words differ", c, (int)kids[c],
				sh->bad[c], words);
		else if (!WIFEXITED(st) || WEXITSTATUS(st))
			tp_fail("child %d (%d): wait status %#x", c, (int)kids[c], st);
	}
	return tp_finish();
}
