/* ghost GOFILE DIR [basic|big|sparse|link|exe]
 *
 * Deleted files, all made in DIR/ghost (which must stay empty: a restored
 * deleted file must not be visible):
 *  basic:
 *  - fd 20: DIR/ghost/open, 600 KiB, mode 0640, a 100 KiB pattern, a hole,
 *    then 4 KiB at 596 KiB; O_RDWR at offset 12345, then unlinked; fd 21
 *    is a second description of it, O_RDONLY at offset 777; the file is
 *    also mapped shared at M1: after the
 *    restore a write through fd 20 shows in M1, so the fd and the mapping
 *    are one file again;
 *  - DIR/ghost/mapped, 64 KiB, mapped shared (M2, written after the
 *    mapping) and private (M3, one page changed), closed and unlinked;
 *  - the descriptors read as "... (deleted)", have no link, the size and
 *    mode; the mappings read as deleted in /proc/self/maps; the contents
 *    and offsets are as they were.
 *  big: fd 20 only, 2 MiB (more than the default --ghost-limit).
 *  sparse: fd 20 only, 1 GiB holding 16 KiB of data (4 KiB at 0, 8 KiB
 *    at 512 MiB, 4 KiB at the end), within the default --ghost-limit: the
 *    data comes back and the holes stay holes (SEEK_DATA/SEEK_HOLE, blocks).
 *  link: DIR/ghost/orig with a second link DIR/ghost/other; fd 20 opened
 *    by orig at offset 100, orig unlinked (needs --link-remap). After the
 *    restore a write through fd 20 shows in DIR/ghost/other, and DIR/ghost
 *    holds only "other" (the link remap is gone).
 *  exe: run from a copy of this program in DIR/ghost, which it removes: it
 *    runs on after the restore, /proc/self/exe reads as the deleted copy,
 *    with the same size and no link.
 */
#include "testprog.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define FD1	  20
#define FD2	  21
#define OPEN_SIZE (600 * 1024)
#define OPEN_DATA (100 * 1024)
#define OPEN_TAIL (596 * 1024)
#define BIG_SIZE  (2 * 1024 * 1024)
#define MAP_SIZE  (64 * 1024)
#define SPARSE_SIZE (1024LL * 1024 * 1024)
#define SPARSE_MID  (512LL * 1024 * 1024)

static char dir[4096], mode[16];
static unsigned char *m1, *m2, *m3;

static unsigned char byte(unsigned long i, unsigned long seed)
{
	return (unsigned char)tp_pattern(i, seed);
}

static void put(int fd, off_t off, size_t n, unsigned long seed)
{
	unsigned char buf[4096];

	for (size_t done = 0; done < n;) {
		size_t c = n - done < sizeof(buf) ? n - done : sizeof(buf);

		for (size_t i = 0; i < c; i++)
			buf[i] = byte(off + done + i, seed);
		if (pwrite(fd, buf, c, off + done) != (ssize_t)c)
			tp_die("pwrite");
		done += c;
	}
}

/* The expected byte at off of the "open" file. */
static unsigned char open_byte(off_t off)
{
	if (off < OPEN_DATA || off >= OPEN_TAIL)
		return byte(off, 1);
	return 0;
}

static void place(int fd, int at)
{
	if (fd < 0 || dup2(fd, at) != at)
		tp_die("dup2 %d", at);
	close(fd);
}

static void check_deleted_fd(int fd, off_t size, mode_t mode, nlink_t nlink, const char *name)
{
	char path[64], link[4096], want[4200];
	struct stat st;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0) {
		tp_fail("fd %d is not open", fd);
		return;
	}
	link[n] = 0;
	snprintf(want, sizeof(want), "%s/ghost/%s (deleted)", dir, name);
	if (strcmp(link, want))
		tp_fail("fd %d is %s, expected %s", fd, link, want);
	if (fstat(fd, &st)) {
		tp_fail("fstat fd %d: %s", fd, strerror(errno));
		return;
	}
	if (st.st_nlink != nlink)
		tp_fail("fd %d: %lu links, expected %lu", fd, (unsigned long)st.st_nlink,
			(unsigned long)nlink);
	if (st.st_size != size)
		tp_fail("fd %d: size %lld, expected %lld", fd, (long long)st.st_size,
			(long long)size);
	if ((st.st_mode & 07777) != mode)
		tp_fail("fd %d: mode %o, expected %o", fd, st.st_mode & 07777, mode);
}

static void check_offset(int fd, off_t want)
{
	off_t pos = lseek(fd, 0, SEEK_CUR);

	if (pos != want)
		tp_fail("fd %d at offset %lld, expected %lld", fd, (long long)pos, (long long)want);
}

static void check_map_deleted(const void *addr, const char *name)
{
	char perms[5], path[4096], want[4200];

	snprintf(want, sizeof(want), "%s/ghost/%s (deleted)", dir, name);
	if (tp_maps_entry(addr, perms, NULL, path, sizeof(path)))
		tp_fail("mapping %p is gone", addr);
	else if (strcmp(path, want))
		tp_fail("mapping %p is of %s, expected %s", addr, path, want);
}

/* DIR/ghost holds exactly the names given (NULL-terminated). */
static void check_dir(const char *const *names)
{
	char path[4200];
	struct dirent *e;
	int found = 0, want = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/ghost", dir);
	d = opendir(path);
	if (!d) {
		tp_fail("cannot open %s: %s", path, strerror(errno));
		return;
	}
	while (names[want])
		want++;
	while ((e = readdir(d))) {
		int ok = 0;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		for (int i = 0; names[i]; i++)
			ok |= !strcmp(e->d_name, names[i]);
		if (ok)
			found++;
		else
			tp_fail("%s holds %s, which should not be visible", path, e->d_name);
	}
	closedir(d);
	if (found != want)
		tp_fail("%s holds %d of the %d expected names", path, found, want);
}

static int file(const char *name, int flags)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/ghost/%s", dir, name);
	return open(path, flags, 0600);
}

static void unlink_name(const char *name)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/ghost/%s", dir, name);
	if (unlink(path))
		tp_die("unlink %s", path);
}

static void setup_basic(void)
{
	int fd = file("open", O_RDWR | O_CREAT | O_EXCL), mf;

	put(fd, 0, OPEN_DATA, 1);
	put(fd, OPEN_TAIL, OPEN_SIZE - OPEN_TAIL, 1);
	if (fchmod(fd, 0640))
		tp_die("fchmod");
	place(fd, FD1);
	place(file("open", O_RDONLY), FD2);
	if (lseek(FD1, 12345, SEEK_SET) != 12345 || lseek(FD2, 777, SEEK_SET) != 777)
		tp_die("lseek");
	m1 = mmap(NULL, OPEN_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, FD1, 0);
	if (m1 == MAP_FAILED)
		tp_die("mmap open");
	unlink_name("open");

	mf = file("mapped", O_RDWR | O_CREAT | O_EXCL);
	put(mf, 0, MAP_SIZE, 2);
	m2 = mmap(NULL, MAP_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mf, 0);
	m3 = mmap(NULL, MAP_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, mf, 0);
	if (m2 == MAP_FAILED || m3 == MAP_FAILED)
		tp_die("mmap mapped");
	close(mf);
	unlink_name("mapped");
	/* a shared write lands in the file; a private one stays in the page */
	memset(m2 + 8192, 0x5a, 100);
	memset(m3 + 4096, 0xa5, 4096);
}

static void check_basic(void)
{
	static const char *const none[] = {NULL};
	unsigned char buf[4096];
	int bad = 0;

	check_deleted_fd(FD1, OPEN_SIZE, 0640, 0, "open");
	check_deleted_fd(FD2, OPEN_SIZE, 0640, 0, "open");
	check_offset(FD1, 12345);
	check_offset(FD2, 777);
	for (off_t off = 0; off < OPEN_SIZE && !bad; off += sizeof(buf)) {
		if (pread(FD2, buf, sizeof(buf), off) != sizeof(buf)) {
			tp_fail("cannot read the deleted file at %lld", (long long)off);
			break;
		}
		for (size_t i = 0; i < sizeof(buf) && !bad; i++)
			if (buf[i] != open_byte(off + i)) {
				tp_fail("deleted file: wrong byte at %lld",
					(long long)off + (long long)i);
				bad = 1;
			}
	}
	/* one file behind the fds and the mapping */
	if (pwrite(FD1, "XYZ", 3, 50) != 3 || memcmp(m1 + 50, "XYZ", 3))
		tp_fail("a write through fd %d does not show in its shared mapping", FD1);
	if (m1[OPEN_TAIL] != open_byte(OPEN_TAIL) || m1[OPEN_DATA] != 0)
		tp_fail("the shared mapping of the deleted file has the wrong contents");
	check_map_deleted(m1, "open");
	check_map_deleted(m2, "mapped");
	check_map_deleted(m3, "mapped");
	for (size_t i = 0; i < MAP_SIZE; i++) {
		unsigned char s = i >= 8192 && i < 8192 + 100 ? 0x5a : byte(i, 2);
		unsigned char p = i >= 4096 && i < 8192 ? 0xa5 : s;

		if (m2[i] != s) {
			tp_fail("shared mapping of the deleted file: wrong byte at %zu", i);
			break;
		}
		if (m3[i] != p) {
			tp_fail("private mapping of the deleted file: wrong byte at %zu", i);
			break;
		}
	}
	check_dir(none);
}

static void setup_big(void)
{
	int fd = file("open", O_RDWR | O_CREAT | O_EXCL);

	put(fd, 0, BIG_SIZE, 1);
	place(fd, FD1);
	unlink_name("open");
}

static void check_big(void)
{
	static const char *const none[] = {NULL};
	unsigned char b;

	check_deleted_fd(FD1, BIG_SIZE, 0600, 0, "open");
	if (pread(FD1, &b, 1, BIG_SIZE - 1) != 1 || b != byte(BIG_SIZE - 1, 1))
		tp_fail("the big deleted file lost its last byte");
	check_dir(none);
}

static void setup_sparse(void)
{
	int fd = file("open", O_RDWR | O_CREAT | O_EXCL);

	put(fd, 0, 4096, 1);
	put(fd, SPARSE_MID, 8192, 1);
	put(fd, SPARSE_SIZE - 4096, 4096, 1);
	place(fd, FD1);
	unlink_name("open");
}

/* The data of the sparse file: [start, end) pairs, then the holes between. */
static void check_sparse(void)
{
	static const char *const none[] = {NULL};
	static const off_t runs[][2] = {
		{0, 4096}, {SPARSE_MID, SPARSE_MID + 8192}, {SPARSE_SIZE - 4096, SPARSE_SIZE}};
	unsigned char buf[8192];
	struct stat st;
	off_t off = 0;

	check_deleted_fd(FD1, SPARSE_SIZE, 0600, 0, "open");
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		off_t data = lseek(FD1, off, SEEK_DATA), hole;
		size_t n = runs[i][1] - runs[i][0];

		hole = data < 0 ? -1 : lseek(FD1, data, SEEK_HOLE);
		if (data != runs[i][0] || hole != runs[i][1])
			tp_fail("sparse file: data %lld-%lld after %lld, expected %lld-%lld",
				(long long)data, (long long)hole, (long long)off,
				(long long)runs[i][0], (long long)runs[i][1]);
		if (pread(FD1, buf, n, runs[i][0]) != (ssize_t)n)
			tp_fail("sparse file: cannot read at %lld", (long long)runs[i][0]);
		else
			for (size_t j = 0; j < n; j++)
				if (buf[j] != byte(runs[i][0] + j, 1)) {
					tp_fail("sparse file: byte %lld differs",
						(long long)(runs[i][0] + j));
					break;
				}
		off = runs[i][1];
	}
	if (fstat(FD1, &st) == 0 && st.st_blocks * 512 > 64 * 1024)
		tp_fail("sparse file: %lld blocks allocated, its holes were filled",
			(long long)st.st_blocks);
	check_dir(none);
}

static void setup_link(void)
{
	char a[4200], b[4200];
	int fd = file("orig", O_RDWR | O_CREAT | O_EXCL);

	put(fd, 0, 4096, 3);
	snprintf(a, sizeof(a), "%s/ghost/orig", dir);
	snprintf(b, sizeof(b), "%s/ghost/other", dir);
	if (link(a, b))
		tp_die("link");
	place(fd, FD1);
	if (lseek(FD1, 100, SEEK_SET) != 100)
		tp_die("lseek");
	unlink_name("orig");
}

static void check_link(void)
{
	static const char *const other[] = {"other", NULL};
	char buf[3];
	int fd;

	check_deleted_fd(FD1, 4096, 0600, 1, "orig");
	check_offset(FD1, 100);
	if (write(FD1, "abc", 3) != 3)
		tp_fail("cannot write through fd %d", FD1);
	fd = file("other", O_RDONLY);
	if (fd < 0 || pread(fd, buf, 3, 100) != 3 || memcmp(buf, "abc", 3))
		tp_fail("a write through fd %d does not show in its other link", FD1);
	if (fd >= 0)
		close(fd);
	check_dir(other);
}

static char exe[4096];
static off_t exe_size;

static void setup_exe(void)
{
	struct stat st;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n < 0)
		tp_die("readlink /proc/self/exe");
	exe[n] = 0;
	if (strncmp(exe, dir, strlen(dir)) || stat(exe, &st))
		tp_die("exe mode: run a copy of the program placed in DIR/ghost, not %s", exe);
	exe_size = st.st_size;
	if (unlink(exe))
		tp_die("unlink %s", exe);
}

static void check_exe(void)
{
	static const char *const none[] = {NULL};
	char link[4200], want[4200], elf[4];
	struct stat st;
	ssize_t n = readlink("/proc/self/exe", link, sizeof(link) - 1);
	int fd;

	link[n > 0 ? n : 0] = 0;
	snprintf(want, sizeof(want), "%s (deleted)", exe);
	if (strcmp(link, want))
		tp_fail("/proc/self/exe is %s, expected %s", link, want);
	fd = open("/proc/self/exe", O_RDONLY);
	if (fd < 0 || fstat(fd, &st) || pread(fd, elf, 4, 0) != 4) {
		tp_fail("cannot read /proc/self/exe: %s", strerror(errno));
	} else {
		if (st.st_size != exe_size || st.st_nlink != 0)
			tp_fail("the executable has %lld bytes and %lu links, expected %lld and 0",
				(long long)st.st_size, (unsigned long)st.st_nlink,
				(long long)exe_size);
		if (memcmp(elf,
			   "\x7f"
			   "ELF",
			   4))
			tp_fail("the executable is not the ELF file it was");
	}
	if (fd >= 0)
		close(fd);
	check_map_deleted((void *)check_exe, "exe");
	check_dir(none);
}

int main(int argc, char **argv)
{
	char path[4200];

	tp_init(argc, argv, 2, "GOFILE DIR [basic|big|sparse|link|exe]");
	if (!realpath(argv[2], dir))
		tp_die("realpath %s", argv[2]);
	snprintf(mode, sizeof(mode), "%s", argc > 3 ? argv[3] : "basic");
	snprintf(path, sizeof(path), "%s/ghost", dir);
	if (mkdir(path, 0700) && errno != EEXIST)
		tp_die("mkdir %s", path);
	if (!strcmp(mode, "basic"))
		setup_basic();
	else if (!strcmp(mode, "big"))
		setup_big();
	else if (!strcmp(mode, "sparse"))
		setup_sparse();
	else if (!strcmp(mode, "link"))
		setup_link();
	else if (!strcmp(mode, "exe"))
		setup_exe();
	else
		tp_die("unknown mode %s", mode);
	tp_ready();
	tp_wait_go();
	if (tp_sabotaged("ghost") && strcmp(mode, "exe") && pwrite(FD1, "!", 1, OPEN_SIZE - 1) != 1)
		tp_fail("sabotage: cannot write");
	if (!strcmp(mode, "basic"))
		check_basic();
	else if (!strcmp(mode, "big"))
		check_big();
	else if (!strcmp(mode, "sparse"))
		check_sparse();
	else if (!strcmp(mode, "link"))
		check_link();
	else
		check_exe();
	return tp_finish();
}
