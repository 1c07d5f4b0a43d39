/* secret GOFILE SECRET [DIR]
 *
 * For tests/seal.bats: keeps SECRET (a string given on the command line, so
 * that it is nowhere in the program's file) in memory: in a global buffer,
 * on the heap, on the stack and at the start of every page of a 4 MiB
 * anonymous mapping; with DIR, also works in DIR (whose name the test makes
 * hold the secret, so that a record image holds it too). After GO it checks
 * that every copy, and the working directory, are still there.
 */
#include "testprog.h"

#include <limits.h>
#include <sys/mman.h>

#define MAP_LEN	    (4u << 20)
#define HEAP_COPIES 256

static char global_copy[256];

static int check_copy(const char *where, const char *p, const char *secret, size_t len)
{
	if (memcmp(p, secret, len)) {
		tp_fail("the secret in %s changed", where);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *secret, *dir = NULL;
	char stack_copy[256], cwd[PATH_MAX];
	size_t len;
	char *heap, *map;
	long pagesz = sysconf(_SC_PAGESIZE);

	tp_init(argc, argv, 2, "GOFILE SECRET [DIR]");
	secret = argv[2];
	len = strlen(secret);
	if (!len || len >= sizeof(global_copy))
		tp_die("SECRET must have 1 to %zu characters", sizeof(global_copy) - 1);
	if (argc > 3) {
		dir = argv[3];
		if (chdir(dir))
			tp_die("chdir %s", dir);
	}

	memcpy(global_copy, secret, len);
	memcpy(stack_copy, secret, len + 1);
	heap = malloc(HEAP_COPIES * len);
	if (!heap)
		tp_die("malloc");
	for (int i = 0; i < HEAP_COPIES; i++)
		memcpy(heap + i * len, secret, len);
	map = mmap(NULL, MAP_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED)
		tp_die("mmap");
	for (size_t o = 0; o < MAP_LEN; o += pagesz)
		memcpy(map + o, secret, len);

	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("secret"))
		global_copy[0] ^= 1;
	check_copy("the global buffer", global_copy, secret, len);
	check_copy("the stack", stack_copy, secret, len);
	for (int i = 0; i < HEAP_COPIES; i++)
		if (check_copy("the heap", heap + i * len, secret, len))
			break;
	for (size_t o = 0; o < MAP_LEN; o += pagesz)
		if (check_copy("the mapping", map + o, secret, len))
			break;
	if (dir) {
		if (!getcwd(cwd, sizeof(cwd)))
			tp_fail("getcwd: %s", strerror(errno));
		else if (dir[0] == '/' && strcmp(cwd, dir))
			tp_fail("working directory is %s, was %s", cwd, dir);
	}
	return tp_finish();
}
