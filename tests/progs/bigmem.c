/* bigmem SIZE_MB GOFILE
 *
 * For the benchmark: touches SIZE_MB MiB of anonymous memory with a per-word
 * pattern (every page different, none zero), prints READY, waits for GOFILE,
 * checks every word, prints PASS or FAIL.
 */
#include "testprog.h"

#include <stdint.h>
#include <sys/mman.h>

int main(int argc, char **argv)
{
	size_t mb, words, bad = 0, first = 0;
	uint64_t *m, seed;

	if (argc < 3) {
		fprintf(stderr, "usage: %s SIZE_MB GOFILE\n", argv[0]);
		return 2;
	}
	mb = strtoul(argv[1], NULL, 0);
	argv[1] = argv[2]; /* GOFILE */
	tp_init(argc - 1, argv, 1, "SIZE_MB GOFILE");
	seed = (uint64_t)tp_pid << 20;
	words = (mb << 20) / sizeof(uint64_t);
	m = mmap(NULL, words * sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	if (m == MAP_FAILED)
		tp_die("mmap %zu MiB", mb);
	for (size_t i = 0; i < words; i++)
		m[i] = tp_pattern(i, seed) | 1;

	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("mem"))
		m[words - 1] = 0;
	for (size_t i = 0; i < words; i++)
		if (m[i] != (tp_pattern(i, seed) | 1) && !bad++)
			first = i;
	if (bad)
		tp_fail("%zu of %zu words differ, first at byte %zu", bad, words, first * 8);
	return tp_finish();
}
