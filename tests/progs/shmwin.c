/* shmwin GOFILE
 *
 * Windows on one shared anonymous memory object (8 pages, each page i
 * filled with pattern i), none of them the mapping that created it:
 *  - the parent maps offsets 4-7 shared (W1) and offsets 2-5 privately (P)
 *    through /proc/self/map_files, writes its own copy of P's second page
 *    (offset 3) and only reads the first (offset 2), then unmaps the
 *    original mapping;
 *  - its child inherits W1 and P, and maps offsets 0-1 shared (W2).
 * Offsets 2-3 of the object are then seen only through the private window.
 * After GO the child writes through W1 and W2, the parent checks that it
 * sees the child's store through W1 and, through P, where P has no copy of
 * its own, that P keeps its own copy, the object's data and size.
 *
 * Sabotage (STASIS_SABOTAGE): "unshare" replaces the parent's W1 by a
 * private copy, "data" overwrites what P shows of offset 2.
 */
#include "testprog.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define OBJ_PAGES 8

static long pg;
static unsigned char *w1, *w2, *priv;

static unsigned char pat(int page, long off, int which)
{
	return (unsigned char)(page * 37 + off * 3 + (off >> 8) + which * 101 + 1);
}

static void check_page(const char *what, const unsigned char *p, int page, int which)
{
	for (long j = 0; j < pg; j++)
		if (p[j] != pat(page, j, which)) {
			tp_fail("%s: byte +%ld is %#x, expected %#x", what, j, p[j],
				pat(page, j, which));
			return;
		}
}

static void *map_window(int fd, int pages, int off_pages, int flags)
{
	void *m = mmap(NULL, pages * pg, PROT_READ | PROT_WRITE, flags, fd, off_pages * pg);

	if (m == MAP_FAILED)
		tp_die("mmap window at page %d", off_pages);
	return m;
}

static int child(void)
{
	tp_nfail = 0;
	tp_faillen = 0;
	tp_wait_go();
	check_page("child: W2 page 0 (offset 0)", w2, 0, 0);
	check_page("child: W1 page 1 (offset 5)", w1 + pg, 5, 0);
	/* through W1 (inherited) and W2 (its own) */
	memset(w1 + 3 * pg, 0x5a, pg);
	memset(w2 + pg, 0xa5, pg);
	if (tp_nfail)
		printf("FAIL (child): %s\n", tp_fails);
	fflush(stdout);
	_exit(tp_nfail ? 1 : 0);
}

int main(int argc, char **argv)
{
	unsigned char *obj, c;
	char path[128];
	struct stat sb;
	pid_t pid;
	int fd, status;

	tp_init(argc, argv, 1, "GOFILE");
	pg = sysconf(_SC_PAGESIZE);

	obj = mmap(NULL, OBJ_PAGES * pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (obj == MAP_FAILED)
		tp_die("mmap shared anonymous");
	for (int i = 0; i < OBJ_PAGES; i++)
		for (long j = 0; j < pg; j++)
			obj[i * pg + j] = pat(i, j, 0);
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)obj,
		 (unsigned long)obj + OBJ_PAGES * pg);
	fd = open(path, O_RDWR);
	if (fd < 0)
		tp_die("open %s", path);
	w1 = map_window(fd, 4, 4, MAP_SHARED);
	priv = map_window(fd, 4, 2, MAP_PRIVATE);
	for (long j = 0; j < pg; j++)
		priv[pg + j] = pat(3, j, 1);
	c = *(volatile unsigned char *)priv;
	(void)c;

	pid = fork();
	if (pid < 0)
		tp_die("fork");
	if (pid == 0) {
		munmap(obj, OBJ_PAGES * pg);
		w2 = map_window(fd, 2, 0, MAP_SHARED);
		close(fd);
		child();
	}
	munmap(obj, OBJ_PAGES * pg);
	close(fd);

	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("unshare")) {
		unsigned char *copy = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE,
					   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (copy != MAP_FAILED) {
			memcpy(copy, w1, 4 * pg);
			mremap(copy, 4 * pg, 4 * pg, MREMAP_MAYMOVE | MREMAP_FIXED, w1);
		}
	}
	if (tp_sabotaged("data"))
		priv[0] ^= 0xff;

	if (waitpid(pid, &status, 0) != pid)
		tp_fail("waitpid: %s", strerror(errno));
	else if (!WIFEXITED(status) || WEXITSTATUS(status))
		tp_fail("the child reports a difference (status %#x)", status);

	check_page("P page 0 (offset 2, object data seen only privately)", priv, 2, 0);
	check_page("P page 1 (offset 3, its own copy)", priv + pg, 3, 1);
	check_page("W1 page 0 (offset 4)", w1, 4, 0);
	for (long j = 0; j < pg; j++)
		if (w1[3 * pg + j] != 0x5a) {
			tp_fail("W1 page 3 (offset 7): the child's store is not seen (+%ld is %#x)",
				j, w1[3 * pg + j]);
			break;
		}
	/* P has no copy of offset 4: it reads the object */
	w1[0] ^= 0xff;
	if (priv[2 * pg] != (unsigned char)(pat(4, 0, 0) ^ 0xff))
		tp_fail("P page 2 (offset 4) does not see a store through W1");
	w1[0] ^= 0xff;

	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)w1,
		 (unsigned long)w1 + 4 * pg);
	if (stat(path, &sb))
		tp_fail("stat %s: %s", path, strerror(errno));
	else if (sb.st_size != OBJ_PAGES * pg)
		tp_fail("the object is %lld bytes, expected %ld", (long long)sb.st_size,
			OBJ_PAGES * pg);
	if (tp_maps_entry(priv, (char[5]){ 0 }, NULL, path, sizeof(path)) ||
	    strcmp(path, "/dev/zero (deleted)"))
		tp_fail("P is not a mapping of the object (maps says '%s')", path);
	return tp_finish();
}
