/* memfd GOFILE
 *
 * memfd objects, open and mapped, in a parent and its child.
 *
 * data:    "stasis-data", 13288 patterned bytes, offset 1234, sealed
 *          SHRINK|GROW|WRITE; also mapped privately (one byte changed in
 *          the private copy) and shared read-only after sealing.
 * sealed:  "stasis-sealed" without MFD_ALLOW_SEALING (so F_SEAL_SEAL),
 *          mode 0640, "hello".
 * sparse:  64 MiB with one byte at 32 MiB.
 * shared:  "stasis-shared", 8 KiB, open in the parent only, mapped shared
 *          by parent and child; sealed SHRINK|GROW.
 * maponly: "stasis-maponly", 12 KiB, mapped shared by both, no descriptor.
 * future:  "stasis-future", mapped shared writable, then sealed
 *          F_SEAL_FUTURE_WRITE (the mapping stays writable, write(2) not).
 *
 * After GO: contents, size, offset, names, mode and seals are as they
 * were; sealed operations are refused (write, ftruncate, F_ADD_SEALS on
 * F_SEAL_SEAL, a writable mapping); the private copy kept its change while
 * the object did not; the shared descriptor and mapping are one object
 * (a pwrite shows in the mapping, F_SEAL_WRITE is refused because of it);
 * and what parent and child write in the shared mappings, each sees.
 */
#include "testprog.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

#define DATA_SIZE 13288
#define SPARSE_SIZE (64 << 20)
#define PG 4096

static int m_data, m_sealed, m_sparse, m_shared, m_future;
static unsigned char *p_priv, *p_ro, *p_shared, *p_maponly, *p_future;
static pid_t child;

static unsigned char pat(size_t i, int seed)
{
	return (unsigned char)(tp_pattern(i / 8, seed) >> (i % 8 * 8));
}

static int mk(const char *name, unsigned flags)
{
	int fd = memfd_create(name, flags);

	if (fd < 0)
		tp_die("memfd_create %s", name);
	return fd;
}

static void *map(int fd, size_t len, int prot, int flags)
{
	void *p = mmap(NULL, len, prot, flags, fd, 0);

	if (p == MAP_FAILED)
		tp_die("mmap");
	return p;
}

/* Waits up to 5 s for *p to become v. */
static int wait_byte(volatile unsigned char *p, unsigned char v)
{
	for (int i = 0; i < 500; i++) {
		if (*p == v)
			return 0;
		usleep(10000);
	}
	return -1;
}

static int child_main(void)
{
	int bad = 0;

	close(m_shared); /* the child maps it without a descriptor */
	tp_wait_go();
	for (size_t i = 0; i < 2 * PG; i++)
		if (i != 100 && i != 200 && i != 300 && p_shared[i] != pat(i, 3))
			bad |= 1;
	for (size_t i = 0; i < 3 * PG; i++)
		if (i != 100 && i != 200 && p_maponly[i] != pat(i, 4))
			bad |= 2;
	p_shared[100] = 0xC1;
	p_maponly[100] = 0xC2;
	if (wait_byte(&p_shared[200], 0xA1) || wait_byte(&p_maponly[200], 0xA2))
		bad |= 4;
	if (p_shared[300] != 'Z') /* written by the parent through its descriptor */
		bad |= 8;
	_exit(bad);
}

static void setup(void)
{
	unsigned char buf[DATA_SIZE];

	m_data = mk("stasis-data", MFD_ALLOW_SEALING);
	for (size_t i = 0; i < DATA_SIZE; i++)
		buf[i] = pat(i, 1);
	if (write(m_data, buf, DATA_SIZE) != DATA_SIZE || lseek(m_data, 1234, SEEK_SET) != 1234)
		tp_die("fill stasis-data");
	p_priv = map(m_data, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	p_priv[10] ^= 0xFF; /* copied on write: the object keeps pat(10) */
	if (fcntl(m_data, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE))
		tp_die("seal stasis-data");
	p_ro = map(m_data, 4 * PG, PROT_READ, MAP_SHARED);

	m_sealed = mk("stasis-sealed", 0);
	if (write(m_sealed, "hello", 5) != 5 || fchmod(m_sealed, 0640))
		tp_die("fill stasis-sealed");

	m_sparse = mk("stasis-sparse", 0);
	if (ftruncate(m_sparse, SPARSE_SIZE) || pwrite(m_sparse, "S", 1, SPARSE_SIZE / 2) != 1)
		tp_die("fill stasis-sparse");

	m_shared = mk("stasis-shared", MFD_ALLOW_SEALING);
	if (ftruncate(m_shared, 2 * PG))
		tp_die("ftruncate stasis-shared");
	p_shared = map(m_shared, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED);
	for (size_t i = 0; i < 2 * PG; i++)
		p_shared[i] = pat(i, 3);
	if (fcntl(m_shared, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW))
		tp_die("seal stasis-shared");

	int m = mk("stasis-maponly", 0);
	if (ftruncate(m, 3 * PG))
		tp_die("ftruncate stasis-maponly");
	p_maponly = map(m, 3 * PG, PROT_READ | PROT_WRITE, MAP_SHARED);
	close(m);
	for (size_t i = 0; i < 3 * PG; i++)
		p_maponly[i] = pat(i, 4);

	m_future = mk("stasis-future", MFD_ALLOW_SEALING);
	if (ftruncate(m_future, PG))
		tp_die("ftruncate stasis-future");
	p_future = map(m_future, PG, PROT_READ | PROT_WRITE, MAP_SHARED);
	p_future[0] = 'F';
	if (fcntl(m_future, F_ADD_SEALS, F_SEAL_FUTURE_WRITE))
		tp_die("seal stasis-future");

	child = fork();
	if (child < 0)
		tp_die("fork");
	if (child == 0)
		child_main();
}

static void check_link(int fd, const char *name)
{
	char path[64], link[256], want[256];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	snprintf(want, sizeof(want), "/memfd:%s (deleted)", name);
	n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	if (strcmp(link, want))
		tp_fail("fd %d is '%s', not '%s'", fd, link, want);
}

static void check_map_path(const void *p, const char *name, const char *perms)
{
	char got[5], path[256], want[256];

	snprintf(want, sizeof(want), "/memfd:%s (deleted)", name);
	if (tp_maps_entry(p, got, NULL, path, sizeof(path)))
		tp_fail("no mapping at %p for %s", p, name);
	else if (strcmp(path, want) || strcmp(got, perms))
		tp_fail("the mapping of %s is '%s' %s, expected %s", name, path, got, perms);
}

static void check(void)
{
	unsigned char buf[DATA_SIZE];
	struct stat st;
	char c;
	int status;

	if (tp_sabotaged("seals"))
		fcntl(m_data, F_ADD_SEALS, F_SEAL_SEAL);
	if (tp_sabotaged("shared"))
		p_shared = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
				-1, 0);

	/* data */
	check_link(m_data, "stasis-data");
	if (lseek(m_data, 0, SEEK_CUR) != 1234)
		tp_fail("stasis-data offset is %lld", (long long)lseek(m_data, 0, SEEK_CUR));
	if (fstat(m_data, &st) || st.st_size != DATA_SIZE)
		tp_fail("stasis-data is %lld bytes", (long long)st.st_size);
	if (pread(m_data, buf, DATA_SIZE, 0) != DATA_SIZE)
		tp_fail("cannot read stasis-data");
	for (size_t i = 0; i < DATA_SIZE; i++)
		if (buf[i] != pat(i, 1)) {
			tp_fail("stasis-data differs at %zu", i);
			break;
		}
	if (fcntl(m_data, F_GET_SEALS) != (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE))
		tp_fail("stasis-data seals are %#x", fcntl(m_data, F_GET_SEALS));
	if (write(m_data, "x", 1) != -1 || errno != EPERM)
		tp_fail("write to write-sealed stasis-data was not refused");
	if (ftruncate(m_data, 100) != -1 || errno != EPERM)
		tp_fail("shrinking stasis-data was not refused");
	if (mmap(NULL, PG, PROT_WRITE, MAP_SHARED, m_data, 0) != MAP_FAILED)
		tp_fail("a writable shared mapping of write-sealed stasis-data was allowed");
	if (p_priv[10] != (unsigned char)~pat(10, 1) || p_priv[11] != pat(11, 1) ||
	    p_ro[10] != pat(10, 1))
		tp_fail("private copy %#x/%#x, shared %#x at 10 (want %#x, %#x)", p_priv[10],
			p_priv[11], p_ro[10], (unsigned char)~pat(10, 1), pat(10, 1));
	if (mprotect(p_ro, PG, PROT_READ | PROT_WRITE) != -1)
		tp_fail("the read-only shared mapping of sealed stasis-data became writable");
	check_map_path(p_priv, "stasis-data", "rw-p");
	check_map_path(p_ro, "stasis-data", "r--s");

	/* sealed */
	check_link(m_sealed, "stasis-sealed");
	if (fcntl(m_sealed, F_GET_SEALS) != F_SEAL_SEAL)
		tp_fail("stasis-sealed seals are %#x", fcntl(m_sealed, F_GET_SEALS));
	if (fcntl(m_sealed, F_ADD_SEALS, F_SEAL_WRITE) != -1 || errno != EPERM)
		tp_fail("F_ADD_SEALS on a F_SEAL_SEAL memfd was not refused");
	if (fstat(m_sealed, &st) || (st.st_mode & 07777) != 0640 || st.st_size != 5)
		tp_fail("stasis-sealed mode %o size %lld", st.st_mode & 07777,
			(long long)st.st_size);
	if (pread(m_sealed, buf, 5, 0) != 5 || memcmp(buf, "hello", 5) ||
	    lseek(m_sealed, 0, SEEK_CUR) != 5)
		tp_fail("stasis-sealed contents or offset differ");

	/* sparse */
	if (fstat(m_sparse, &st) || st.st_size != SPARSE_SIZE ||
	    pread(m_sparse, &c, 1, SPARSE_SIZE / 2) != 1 || c != 'S' ||
	    pread(m_sparse, &c, 1, SPARSE_SIZE / 2 - 1) != 1 || c != 0)
		tp_fail("stasis-sparse differs");

	/* future */
	if (p_future[0] != 'F')
		tp_fail("stasis-future lost its contents");
	p_future[1] = 'G'; /* the mapping made before the seal stays writable */
	if (fcntl(m_future, F_GET_SEALS) != F_SEAL_FUTURE_WRITE)
		tp_fail("stasis-future seals are %#x", fcntl(m_future, F_GET_SEALS));
	if (pwrite(m_future, "x", 1, 2) != -1 || errno != EPERM)
		tp_fail("write to future-write-sealed stasis-future was not refused");
	check_map_path(p_future, "stasis-future", "rw-s");

	/* shared, maponly: one object per name, shared with the child */
	check_link(m_shared, "stasis-shared");
	check_map_path(p_shared, "stasis-shared", "rw-s");
	check_map_path(p_maponly, "stasis-maponly", "rw-s");
	if (fcntl(m_shared, F_GET_SEALS) != (F_SEAL_SHRINK | F_SEAL_GROW))
		tp_fail("stasis-shared seals are %#x", fcntl(m_shared, F_GET_SEALS));
	if (pwrite(m_shared, "Z", 1, 300) != 1 || p_shared[300] != 'Z')
		tp_fail("the descriptor and the mapping of stasis-shared are not one object");
	if (fcntl(m_shared, F_ADD_SEALS, F_SEAL_WRITE) != -1 || errno != EBUSY)
		tp_fail("F_SEAL_WRITE on mapped stasis-shared was not refused with EBUSY");
	for (size_t i = 0; i < 3 * PG; i++)
		if (i != 100 && i != 200 && p_maponly[i] != pat(i, 4)) {
			tp_fail("stasis-maponly differs at %zu", i);
			break;
		}
	if (wait_byte(&p_shared[100], 0xC1) || wait_byte(&p_maponly[100], 0xC2))
		tp_fail("the child's writes do not show in the parent's mappings");
	p_shared[200] = 0xA1;
	p_maponly[200] = 0xA2;
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status))
		tp_fail("the child failed (status %#x: 1 shared, 2 maponly contents, 4 parent's "
			"writes not seen, 8 descriptor write not seen)",
			status);
}

int main(int argc, char **argv)
{
	tp_init(argc, argv, 1, "GOFILE");
	setup();
	tp_ready();
	tp_wait_go();
	check();
	return tp_finish();
}
