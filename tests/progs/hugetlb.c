/* hugetlb GOFILE [--fork] SIZE_KB...
 *
 * hugetlb memory of each huge page size given (in KiB, as in
 * /sys/kernel/mm/hugepages/hugepages-SIZEkB), each with its own pattern:
 *  - private anonymous (MAP_HUGETLB), 3 pages: the first and last written,
 *    the middle one never touched (it must read as zeros);
 *  - shared anonymous (MAP_HUGETLB|MAP_SHARED), 2 pages, written: still
 *    shared (a forked child's store is seen);
 *  - a memfd made with MFD_HUGETLB, 2 pages, kept open and mapped shared
 *    (written through the mapping, as hugetlbfs has no write()) and
 *    privately (its second page copied on write with other data): the
 *    descriptor is still on hugetlbfs with that block size, read() agrees
 *    with the mappings, and the private mapping's first page is still the
 *    object's (a store through the shared mapping shows in it).
 * Each mapping must be where it was, of the same device (the hugetlbfs
 * mount of its page size), with KernelPageSize and VmFlags "ht" in
 * /proc/self/smaps.
 *
 * With --fork, a child forked after the set-up inherits all of it and
 * writes the last page of its private anonymous copy with other data: it
 * checks its own view first (first page still the parent's data, middle
 * one zeros, last one its own; the shared memory and the memfd as the
 * parent sees them) and the parent fails when the child does.
 *
 * The huge pages must be reserved (vm.nr_hugepages, or nr_hugepages of
 * the size): 9 per size (a private mapping of the memfd reserves its own),
 * 2 more with --fork.
 */
#include "testprog.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <linux/magic.h>

#define MAX_SIZES    4
#define PRIV_PAGES   3
#define SHANON_PAGES 2
#define MEMFD_PAGES  2

struct huge_set {
	unsigned long hps; /* page size in bytes */
	unsigned char *priv, *shanon, *memfd_sh, *memfd_priv;
	int memfd;
	unsigned long dev[4]; /* of each mapping, from /proc/self/maps */
};

static struct huge_set sets[MAX_SIZES];
static int nr_sets;
static pid_t child;

static unsigned char pat(unsigned long off, int which)
{
	return (unsigned char)(off * 11 + (off >> 12) * 7 + (off >> 21) * 3 + which * 0x45);
}

static void fill(unsigned char *m, size_t len, unsigned long base, int which)
{
	for (size_t i = 0; i < len; i++)
		m[i] = pat(base + i, which);
}

static void check_bytes(const char *what, const unsigned char *m, size_t len, unsigned long base,
			int which)
{
	size_t bad = 0, first = 0;

	for (size_t i = 0; i < len; i++)
		if (m[i] != (which ? pat(base + i, which) : 0) && !bad++)
			first = i;
	if (bad)
		tp_fail("%s: %zu of %zu bytes differ, first at +%#zx (%#x)", what, bad, len, first,
			m[first]);
}

/* smaps of the mapping at addr: its start, device, KernelPageSize (bytes),
 * whether VmFlags has "ht", and its permissions; 0 when found. */
static int smaps_entry(const void *addr, unsigned long *start, unsigned long *dev,
		       unsigned long *kps, int *ht, char perms[5])
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[4096];
	int in = 0, found = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e, kb;
		unsigned maj, min;
		char p[5];

		if (sscanf(line, "%lx-%lx %4s %*x %x:%x", &s, &e, p, &maj, &min) == 5) {
			in = (unsigned long)addr >= s && (unsigned long)addr < e;
			if (in) {
				*start = s;
				*dev = (unsigned long)maj << 20 | min;
				memcpy(perms, p, 5);
				*kps = 0;
				*ht = 0;
				found = 0;
			}
		} else if (in && sscanf(line, "KernelPageSize: %lu kB", &kb) == 1) {
			*kps = kb * 1024;
		} else if (in && !strncmp(line, "VmFlags:", 8)) {
			*ht = strstr(line, " ht") != NULL;
		}
	}
	fclose(f);
	return found;
}

static void check_mapping(struct huge_set *s, int idx, const char *what, const void *addr,
			  const char *want_perms)
{
	unsigned long start, dev, kps;
	char perms[5];
	int ht;

	if (smaps_entry(addr, &start, &dev, &kps, &ht, perms)) {
		tp_fail("%s (%lu kB pages): no mapping at %p", what, s->hps >> 10, addr);
		return;
	}
	if (start != (unsigned long)addr)
		tp_fail("%s (%lu kB pages): the mapping starts at %#lx, not at %p", what,
			s->hps >> 10, start, addr);
	if (kps != s->hps || !ht)
		tp_fail("%s (%lu kB pages): KernelPageSize %lu kB, VmFlags %s ht", what,
			s->hps >> 10, kps >> 10, ht ? "with" : "without");
	if (strcmp(perms, want_perms))
		tp_fail("%s (%lu kB pages): permissions %s, expected %s", what, s->hps >> 10, perms,
			want_perms);
	if (s->dev[idx] != dev)
		tp_fail("%s (%lu kB pages): device %#lx, was %#lx", what, s->hps >> 10, dev,
			s->dev[idx]);
}

static void *map_huge(struct huge_set *s, size_t pages, int flags, int fd)
{
	int huge =
	    fd < 0 ? MAP_HUGETLB | MAP_ANONYMOUS | (__builtin_ctzl(s->hps) << MAP_HUGE_SHIFT) : 0;
	void *m = mmap(NULL, pages * s->hps, PROT_READ | PROT_WRITE, flags | huge, fd, 0);

	if (m == MAP_FAILED)
		tp_die("mmap %zu huge pages of %lu kB (reserved? vm.nr_hugepages)", pages,
		       s->hps >> 10);
	return m;
}

static void set_up(struct huge_set *s)
{
	unsigned long hps = s->hps, start, kps;
	unsigned char *maps[4];
	char perms[5];
	int ht;

	s->priv = map_huge(s, PRIV_PAGES, MAP_PRIVATE, -1);
	fill(s->priv, hps, 0, 'P');
	fill(s->priv + 2 * hps, hps, 2 * hps, 'P');

	s->shanon = map_huge(s, SHANON_PAGES, MAP_SHARED, -1);
	fill(s->shanon, SHANON_PAGES * hps, 0, 'S');

	/* MFD_HUGE_SHIFT (<linux/memfd.h>) is MAP_HUGE_SHIFT */
	s->memfd = memfd_create("stasis-hugetlb", MFD_CLOEXEC | MFD_HUGETLB |
						      (__builtin_ctzl(hps) << MAP_HUGE_SHIFT));
	if (s->memfd < 0 || ftruncate(s->memfd, MEMFD_PAGES * hps))
		tp_die("memfd_create(MFD_HUGETLB) of %lu kB pages", hps >> 10);
	s->memfd_sh = map_huge(s, MEMFD_PAGES, MAP_SHARED, s->memfd);
	fill(s->memfd_sh, MEMFD_PAGES * hps, 0, 'M');
	s->memfd_priv = map_huge(s, MEMFD_PAGES, MAP_PRIVATE, s->memfd);
	fill(s->memfd_priv + hps, hps, hps, 'C');

	maps[0] = s->priv;
	maps[1] = s->shanon;
	maps[2] = s->memfd_sh;
	maps[3] = s->memfd_priv;
	for (int i = 0; i < 4; i++) {
		if (smaps_entry(maps[i], &start, &s->dev[i], &kps, &ht, perms) || kps != hps || !ht)
			tp_die("mapping %d at %p is not a hugetlb mapping of %lu kB pages", i,
			       maps[i], hps >> 10);
	}
}

static void sabotage(struct huge_set *s)
{
	unsigned long hps = s->hps;

	if (tp_sabotaged("data"))
		s->priv[2 * hps + 77] ^= 0x10;
	if (tp_sabotaged("pagesize")) { /* the same contents in ordinary pages */
		unsigned char *copy = malloc(PRIV_PAGES * hps);

		memcpy(copy, s->priv, PRIV_PAGES * hps);
		mmap(s->priv, PRIV_PAGES * hps, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		memcpy(s->priv, copy, PRIV_PAGES * hps);
		free(copy);
	}
	if (tp_sabotaged("unshared")) {		       /* the same contents, privately */
		munmap(s->shanon, SHANON_PAGES * hps); /* its huge pages go back first */
		if (mmap(s->shanon, SHANON_PAGES * hps, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_HUGETLB |
			     (__builtin_ctzl(hps) << MAP_HUGE_SHIFT),
			 -1, 0) == s->shanon)
			fill(s->shanon, SHANON_PAGES * hps, 0, 'S');
	}
	if (tp_sabotaged("memfd"))
		s->memfd_sh[hps + 5] ^= 0x01;
}

static void check(struct huge_set *s)
{
	unsigned long hps = s->hps;
	struct statfs sfs;
	unsigned char *buf;
	char what[64];

	check_mapping(s, 0, "private anonymous", s->priv, "rw-p");
	snprintf(what, sizeof(what), "private anonymous (%lu kB pages)", hps >> 10);
	check_bytes(what, s->priv, hps, 0, 'P');
	check_bytes(what, s->priv + hps, hps, hps, 0);
	check_bytes(what, s->priv + 2 * hps, hps, 2 * hps, 'P');

	check_mapping(s, 1, "shared anonymous", s->shanon, "rw-s");
	snprintf(what, sizeof(what), "shared anonymous (%lu kB pages)", hps >> 10);
	check_bytes(what, s->shanon, SHANON_PAGES * hps, 0, 'S');
	{
		pid_t c = fork();
		int st = 0;

		if (c == 0) {
			s->shanon[hps + 3] = ~pat(hps + 3, 'S');
			_exit(0);
		}
		if (c < 0 || waitpid(c, &st, 0) != c || !WIFEXITED(st))
			tp_fail("fork/wait for the sharing check failed");
		else if (s->shanon[hps + 3] != (unsigned char)~pat(hps + 3, 'S'))
			tp_fail("%s: no longer shared with a child", what);
		s->shanon[hps + 3] = pat(hps + 3, 'S');
	}

	check_mapping(s, 2, "shared memfd mapping", s->memfd_sh, "rw-s");
	check_mapping(s, 3, "private memfd mapping", s->memfd_priv, "rw-p");
	snprintf(what, sizeof(what), "memfd (%lu kB pages)", hps >> 10);
	if (fstatfs(s->memfd, &sfs) || sfs.f_type != HUGETLBFS_MAGIC ||
	    (unsigned long)sfs.f_bsize != hps)
		tp_fail("%s: the descriptor is not on hugetlbfs of that page size", what);
	check_bytes(what, s->memfd_sh, MEMFD_PAGES * hps, 0, 'M');
	buf = malloc(MEMFD_PAGES * hps);
	if (!buf || pread(s->memfd, buf, MEMFD_PAGES * hps, 0) != (ssize_t)(MEMFD_PAGES * hps))
		tp_fail("%s: cannot read it: %s", what, strerror(errno));
	else
		check_bytes("memfd read()", buf, MEMFD_PAGES * hps, 0, 'M');
	free(buf);
	check_bytes("private memfd mapping, page copied on write", s->memfd_priv + hps, hps, hps,
		    'C');
	s->memfd_sh[9] = ~pat(9, 'M');
	if (s->memfd_priv[9] != s->memfd_sh[9])
		tp_fail("%s: the private mapping's untouched page is not the object's", what);
	s->memfd_sh[9] = pat(9, 'M');
}

/* The child's view of what it inherited; its verdict is its exit status,
 * its differences go to stderr (the same log). */
static void child_check(void)
{
	for (int i = 0; i < nr_sets; i++) {
		struct huge_set *s = &sets[i];
		unsigned long hps = s->hps;
		char what[64];

		snprintf(what, sizeof(what), "child: private anonymous (%lu kB pages)", hps >> 10);
		check_bytes(what, s->priv, hps, 0, 'P');
		check_bytes(what, s->priv + hps, hps, hps, 0);
		check_bytes(what, s->priv + 2 * hps, hps, 2 * hps, 'Q');
		snprintf(what, sizeof(what), "child: shared anonymous (%lu kB pages)", hps >> 10);
		check_bytes(what, s->shanon, SHANON_PAGES * hps, 0, 'S');
		snprintf(what, sizeof(what), "child: memfd (%lu kB pages)", hps >> 10);
		check_bytes(what, s->memfd_sh, MEMFD_PAGES * hps, 0, 'M');
		check_bytes(what, s->memfd_priv + hps, hps, hps, 'C');
	}
	if (tp_nfail)
		fprintf(stderr, "child: %s\n", tp_fails);
	_exit(tp_nfail ? 1 : 0);
}

int main(int argc, char **argv)
{
	int first = 2, st = 0;

	tp_init(argc, argv, 2, "[--fork] SIZE_KB...");
	if (!strcmp(argv[2], "--fork"))
		first = 3;
	for (int i = first; i < argc && nr_sets < MAX_SIZES; i++) {
		sets[nr_sets].hps = strtoul(argv[i], NULL, 10) * 1024;
		set_up(&sets[nr_sets++]);
	}
	if (first == 3) {
		int done[2];
		char c;

		if (pipe(done))
			tp_die("pipe");
		child = fork();
		if (child < 0)
			tp_die("fork");
		if (child == 0) {
			for (int i = 0; i < nr_sets; i++)
				fill(sets[i].priv + 2 * sets[i].hps, sets[i].hps, 2 * sets[i].hps,
				     'Q');
			close(done[1]); /* written: the parent may say READY */
			close(done[0]);
			tp_wait_go();
			if (tp_sabotaged("child"))
				sets[0].priv[3] ^= 0x20;
			child_check();
		}
		close(done[1]);
		if (read(done[0], &c, 1) != 0)
			tp_die("waiting for the child");
		close(done[0]);
	}
	tp_ready();
	tp_wait_go();
	/* the child checks first: the parent's checks store into shared memory */
	if (child > 0 && (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st)))
		tp_fail("the child's check failed (status %#x)", st);
	for (int i = 0; i < nr_sets; i++)
		sabotage(&sets[i]);
	for (int i = 0; i < nr_sets; i++)
		check(&sets[i]);
	return tp_finish();
}
