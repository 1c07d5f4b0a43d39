/* heap GOFILE [SIZE_MB]
 *
 * Anonymous memory: a 64 MiB malloc filled with a per-word pattern, small
 * malloc chunks on the brk heap, the program break itself, and a sparse
 * anonymous mapping whose untouched pages must still read as zeros while
 * its touched pages keep their data (some of them written with zeros).
 */
#include "testprog.h"

#include <stdint.h>
#include <sys/mman.h>

#define NSMALL 2000
#define SMALL 200
#define SPARSE_PAGES 4096 /* 16 MiB */
#define SPARSE_STEP 17

static uint64_t *big;
static size_t bigwords;
static unsigned char *small[NSMALL];
static void *brk_at_ready;
static unsigned char *sparse;
static long pagesz;

static int sparse_touched(size_t pg) { return pg % SPARSE_STEP == 0; }
static int sparse_zero_written(size_t pg) { return pg % (SPARSE_STEP * 4) == 0; }

static unsigned char small_byte(int c, int j) { return (unsigned char)(c * 31 + j * 7 + 1); }

int main(int argc, char **argv)
{
	size_t mb = 64;
	uint64_t seed;

	tp_init(argc, argv, 1, "GOFILE [SIZE_MB]");
	if (argc > 2)
		mb = strtoul(argv[2], NULL, 0);
	pagesz = sysconf(_SC_PAGESIZE);
	seed = ((uint64_t)tp_pid << 32) ^ 0x5eed1234abcdULL;

	bigwords = (mb << 20) / sizeof(uint64_t);
	big = malloc(bigwords * sizeof(uint64_t));
	if (!big)
		tp_die("malloc %zu MiB", mb);
	for (size_t i = 0; i < bigwords; i++)
		big[i] = tp_pattern(i, seed);

	for (int c = 0; c < NSMALL; c++) {
		small[c] = malloc(SMALL);
		if (!small[c])
			tp_die("malloc small");
		for (int j = 0; j < SMALL; j++)
			small[c][j] = small_byte(c, j);
	}

	sparse = mmap(NULL, SPARSE_PAGES * pagesz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		      -1, 0);
	if (sparse == MAP_FAILED)
		tp_die("mmap sparse");
	for (size_t pg = 0; pg < SPARSE_PAGES; pg++) {
		if (!sparse_touched(pg))
			continue;
		unsigned char *p = sparse + pg * pagesz;
		if (sparse_zero_written(pg))
			memset(p, 0, pagesz); /* present, but all zeros */
		else
			for (long j = 0; j < pagesz; j++)
				p[j] = (unsigned char)(pg ^ j ^ 0xa5);
	}

	brk_at_ready = sbrk(0);
	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("big"))
		big[bigwords / 2] ^= 1;
	if (tp_sabotaged("small"))
		small[NSMALL - 1][3]++;
	if (tp_sabotaged("sparse"))
		sparse[(SPARSE_STEP + 1) * pagesz + 5] = 1;
	if (tp_sabotaged("brk"))
		(void)sbrk(pagesz);

	size_t bad = 0, first = 0;
	for (size_t i = 0; i < bigwords; i++)
		if (big[i] != tp_pattern(i, seed)) {
			if (!bad++)
				first = i;
		}
	if (bad)
		tp_fail("%zu of %zu words of the %zu MiB block differ, first at byte %zu (%#llx, expected "
			"%#llx)",
			bad, bigwords, mb, first * 8, (unsigned long long)big[first],
			(unsigned long long)tp_pattern(first, seed));

	bad = 0;
	for (int c = 0; c < NSMALL; c++)
		for (int j = 0; j < SMALL; j++)
			if (small[c][j] != small_byte(c, j)) {
				if (!bad++)
					first = (size_t)c;
			}
	if (bad)
		tp_fail("%zu bytes of the small malloc chunks differ, first in chunk %zu", bad, first);

	size_t badpg = 0;
	for (size_t pg = 0; pg < SPARSE_PAGES; pg++) {
		unsigned char *p = sparse + pg * pagesz;
		int ok = 1;
		for (long j = 0; j < pagesz && ok; j++) {
			unsigned char want = 0;
			if (sparse_touched(pg) && !sparse_zero_written(pg))
				want = (unsigned char)(pg ^ j ^ 0xa5);
			ok = p[j] == want;
		}
		if (!ok && !badpg++)
			first = pg;
	}
	if (badpg)
		tp_fail("%zu pages of the sparse mapping differ, first page %zu (%s)", badpg, first,
			sparse_touched(first) ? "touched" : "never touched, must be zero");

	if (sbrk(0) != brk_at_ready)
		tp_fail("program break is %p, was %p", sbrk(0), brk_at_ready);

	return tp_finish();
}
