/* mappings GOFILE DIR
 *
 * Memory mappings of every common kind, each with data in it:
 *  - MAP_PRIVATE, read-write, of a file (DIR/mappings-private.dat, pattern
 *    A): odd pages overwritten with pattern B after mapping, some even pages
 *    read, the others never touched; the unmodified pages must still show the
 *    file's data and the file must not have received the private writes;
 *  - MAP_PRIVATE, read-only, of the same file at a non-zero offset;
 *  - MAP_SHARED of another file (DIR/mappings-shared.dat) written only
 *    through the mapping: the mapping and read() of the file agree, and it is
 *    still shared (a new store through it reaches the file);
 *  - anonymous data made PROT_READ with mprotect;
 *  - anonymous data made PROT_NONE (still ---p, and the data is there once
 *    made readable again);
 *  - MAP_SHARED|MAP_ANONYMOUS data, still shared with a forked child;
 *  - MAP_SHARED, PROT_READ, of a file opened read-write
 *    (DIR/mappings-maywrite.dat): mprotect(PROT_WRITE) still works and a
 *    store reaches the file.
 * Permissions, file offsets and paths come from /proc/self/maps.
 */
#include "testprog.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define PRIV_PAGES 16
#define RO_OFF_PAGES 4
#define RO_PAGES 4
#define SHF_PAGES 8
#define ANON_PAGES 4

static long pg;
static char priv_path[4096], shf_path[4096], mw_path[4096];
static unsigned char *priv, *rofile, *shf, *ro, *none, *shanon, *mw;

static unsigned char pat(unsigned long off, int which)
{
	return (unsigned char)(off * 7 + (off / 4096) * 13 + which * 0x3b + (off >> 9));
}

static int priv_modified(int page) { return page & 1; }

static void check_perms(const char *what, const void *addr, const char *want, const char *path,
			unsigned long offset)
{
	char perms[5], p[4096];
	unsigned long off;

	if (tp_maps_entry(addr, perms, &off, p, sizeof(p))) {
		tp_fail("%s: no mapping at %p in /proc/self/maps", what, addr);
		return;
	}
	if (strcmp(perms, want))
		tp_fail("%s: permissions %s, expected %s", what, perms, want);
	if (path && strcmp(p, path))
		tp_fail("%s: maps path '%s', expected '%s'", what, p, path);
	if (path && off != offset)
		tp_fail("%s: maps file offset %#lx, expected %#lx", what, off, offset);
}

static void check_bytes(const char *what, const unsigned char *mem, size_t len, unsigned long base,
			int which)
{
	size_t bad = 0, first = 0;

	for (size_t i = 0; i < len; i++)
		if (mem[i] != pat(base + i, which) && !bad++)
			first = i;
	if (bad)
		tp_fail("%s: %zu of %zu bytes differ, first at +%#zx (%#x, expected %#x)", what, bad, len,
			first, mem[first], pat(base + first, which));
}

static void *map_anon(int flags, int which)
{
	unsigned char *m = mmap(NULL, ANON_PAGES * pg, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		tp_die("mmap anonymous");
	for (long i = 0; i < ANON_PAGES * pg; i++)
		m[i] = pat(i, which);
	return m;
}

static void write_file(const char *path, size_t len, int which)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	unsigned char *buf = malloc(len);

	if (fd < 0 || !buf)
		tp_die("create %s", path);
	for (size_t i = 0; i < len; i++)
		buf[i] = pat(i, which);
	if (write(fd, buf, len) != (ssize_t)len || fsync(fd))
		tp_die("write %s", path);
	close(fd);
	free(buf);
}

int main(int argc, char **argv)
{
	int fd;
	volatile unsigned char sink = 0;

	tp_init(argc, argv, 2, "GOFILE DIR");
	pg = sysconf(_SC_PAGESIZE);
	snprintf(priv_path, sizeof(priv_path), "%s/mappings-private.dat", argv[2]);
	snprintf(shf_path, sizeof(shf_path), "%s/mappings-shared.dat", argv[2]);
	snprintf(mw_path, sizeof(mw_path), "%s/mappings-maywrite.dat", argv[2]);

	/* Private file mapping, partly modified. */
	write_file(priv_path, PRIV_PAGES * pg, 'A');
	fd = open(priv_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		tp_die("open %s", priv_path);
	priv = mmap(NULL, PRIV_PAGES * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	rofile = mmap(NULL, RO_PAGES * pg, PROT_READ, MAP_PRIVATE, fd, RO_OFF_PAGES * pg);
	if (priv == MAP_FAILED || rofile == MAP_FAILED)
		tp_die("mmap %s", priv_path);
	close(fd);
	for (int p = 0; p < PRIV_PAGES; p++) {
		unsigned char *m = priv + p * pg;
		if (priv_modified(p))
			for (long i = 0; i < pg; i++)
				m[i] = pat(p * pg + i, 'B');
		else if (p % 4 == 0)
			sink += m[0]; /* read: present, still the file's page */
	}
	sink += rofile[0];

	/* Shared file mapping, data written only through the mapping. */
	fd = open(shf_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || ftruncate(fd, SHF_PAGES * pg))
		tp_die("create %s", shf_path);
	shf = mmap(NULL, SHF_PAGES * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (shf == MAP_FAILED)
		tp_die("mmap %s", shf_path);
	close(fd);
	for (long i = 0; i < SHF_PAGES * pg; i++)
		shf[i] = pat(i, 'C');

	/* Shared read-only mapping of a read-write descriptor: may become writable. */
	write_file(mw_path, pg, 'G');
	fd = open(mw_path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		tp_die("open %s", mw_path);
	mw = mmap(NULL, pg, PROT_READ, MAP_SHARED, fd, 0);
	if (mw == MAP_FAILED)
		tp_die("mmap %s", mw_path);
	close(fd);

	/* Anonymous: read-only, no access, shared. */
	ro = map_anon(MAP_PRIVATE, 'D');
	none = map_anon(MAP_PRIVATE, 'E');
	shanon = map_anon(MAP_SHARED, 'F');
	if (mprotect(ro, ANON_PAGES * pg, PROT_READ) || mprotect(none, ANON_PAGES * pg, PROT_NONE))
		tp_die("mprotect");

	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("private")) {
		priv[3 * pg + 1]++;
		priv[2 * pg + 1]++; /* an unmodified page */
	}
	if (tp_sabotaged("shared-private")) { /* the shared mapping became private */
		void *m = mmap(shf, SHF_PAGES * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED,
			       open(shf_path, O_RDONLY), 0);
		(void)m;
	}
	if (tp_sabotaged("maywrite")) { /* the same mapping, of a read-only descriptor */
		void *m = mmap(mw, pg, PROT_READ, MAP_SHARED | MAP_FIXED, open(mw_path, O_RDONLY), 0);
		(void)m;
	}
	if (tp_sabotaged("ro"))
		mprotect(ro, ANON_PAGES * pg, PROT_READ | PROT_WRITE);
	if (tp_sabotaged("none")) {
		mprotect(none, ANON_PAGES * pg, PROT_READ | PROT_WRITE);
		none[5] = 0;
		mprotect(none, ANON_PAGES * pg, PROT_NONE);
	}
	if (tp_sabotaged("shanon")) /* replaced by private anonymous memory */
		mmap(shanon, ANON_PAGES * pg, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_POPULATE, -1, 0),
			memcpy(shanon, ro, ANON_PAGES * pg);

	/* Private file mapping. */
	check_perms("private file mapping", priv, "rw-p", priv_path, 0);
	for (int p = 0; p < PRIV_PAGES; p++) {
		char what[64];
		snprintf(what, sizeof(what), "private file mapping page %d (%s)", p,
			 priv_modified(p) ? "modified" : "unmodified");
		check_bytes(what, priv + p * pg, pg, p * pg, priv_modified(p) ? 'B' : 'A');
	}
	check_perms("read-only file mapping", rofile, "r--p", priv_path, RO_OFF_PAGES * pg);
	check_bytes("read-only file mapping", rofile, RO_PAGES * pg, RO_OFF_PAGES * pg, 'A');
	{
		unsigned char *buf = malloc(PRIV_PAGES * pg);
		fd = open(priv_path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || !buf || pread(fd, buf, PRIV_PAGES * pg, 0) != PRIV_PAGES * pg)
			tp_fail("cannot read back %s: %s", priv_path, strerror(errno));
		else
			check_bytes("private file on disk (must not see private writes)", buf,
				    PRIV_PAGES * pg, 0, 'A');
		if (fd >= 0)
			close(fd);
		free(buf);
	}

	/* Shared file mapping. */
	check_perms("shared file mapping", shf, "rw-s", shf_path, 0);
	check_bytes("shared file mapping", shf, SHF_PAGES * pg, 0, 'C');
	{
		unsigned char *buf = malloc(SHF_PAGES * pg);
		fd = open(shf_path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || !buf || pread(fd, buf, SHF_PAGES * pg, 0) != SHF_PAGES * pg) {
			tp_fail("cannot read back %s: %s", shf_path, strerror(errno));
		} else {
			check_bytes("shared file content via read()", buf, SHF_PAGES * pg, 0, 'C');
			unsigned char b = 0;
			shf[pg + 17] = (unsigned char)~pat(pg + 17, 'C');
			if (pread(fd, &b, 1, pg + 17) != 1 || b != shf[pg + 17])
				tp_fail("a store through the shared file mapping does not reach the "
					"file (read %#x, stored %#x)",
					b, shf[pg + 17]);
			shf[pg + 17] = pat(pg + 17, 'C');
		}
		if (fd >= 0)
			close(fd);
		free(buf);
	}

	/* Shared read-only mapping that may become writable. */
	check_perms("shared read-only file mapping", mw, "r--s", mw_path, 0);
	check_bytes("shared read-only file mapping", mw, pg, 0, 'G');
	if (mprotect(mw, pg, PROT_READ | PROT_WRITE)) {
		tp_fail("mprotect(shared read-only file mapping, PROT_WRITE): %s", strerror(errno));
	} else {
		unsigned char b = 0;

		fd = open(mw_path, O_RDONLY | O_CLOEXEC);
		mw[9] = (unsigned char)~pat(9, 'G');
		if (fd < 0 || pread(fd, &b, 1, 9) != 1 || b != mw[9])
			tp_fail("a store through the mapping made writable does not reach the file");
		mw[9] = pat(9, 'G');
		if (fd >= 0)
			close(fd);
	}

	/* Anonymous. */
	check_perms("mprotect(PROT_READ) region", ro, "r--p", NULL, 0);
	check_bytes("mprotect(PROT_READ) region", ro, ANON_PAGES * pg, 0, 'D');

	check_perms("PROT_NONE region", none, "---p", NULL, 0);
	if (mprotect(none, ANON_PAGES * pg, PROT_READ))
		tp_fail("mprotect(PROT_NONE region, PROT_READ): %s", strerror(errno));
	else
		check_bytes("PROT_NONE region", none, ANON_PAGES * pg, 0, 'E');

	check_perms("shared anonymous region", shanon, "rw-s", NULL, 0);
	check_bytes("shared anonymous region", shanon, ANON_PAGES * pg, 0, 'F');
	{
		pid_t c = fork();
		int st = 0;
		if (c == 0) {
			shanon[100] = 0x42;
			_exit(0);
		}
		if (c < 0 || waitpid(c, &st, 0) != c || !WIFEXITED(st))
			tp_fail("fork/wait for the sharing check failed");
		else if (shanon[100] != 0x42)
			tp_fail("shared anonymous region is no longer shared with a child");
	}
	(void)sink;
	return tp_finish();
}
