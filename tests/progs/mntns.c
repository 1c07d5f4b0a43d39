// SPDX-License-Identifier: GPL-2.0
/*
 * A mount namespace of the tree's own, across a checkpoint.
 *
 *   mntns GOFILE [covered|childns]
 *
 * Everything lives in the directory of GOFILE (DIR, $BATS_TEST_TMPDIR in
 * the suites). The program makes DIR/hostdir/marker ("host") when it is
 * missing, unshares a mount namespace (all of it made private) and sets up:
 *  - a tmpfs at DIR/m/t, nosuid,nodev, size=16m, mode=0751, holding a 6 MiB
 *    patterned file "big", a file "owned" (0640, 1234:5678, fixed mtime),
 *    an empty file, a directory "sub" (0710) with a file, a relative
 *    symlink "link" -> "sub/file", a file "hl" with a hard link "big2", a
 *    FIFO "fifo" (0620), a device node "null" (1,3) and a 64 KiB file
 *    "map", mapped MAP_SHARED and written through the mapping;
 *  - a tmpfs nested in it at m/t/sub/inner, with a file;
 *  - a bind mount of DIR/hostdir at m/bind and a read-only one at
 *    m/robind;
 *  - proc at m/proc (nosuid,nodev,noexec), sysfs at m/sys, devpts at
 *    m/pts, mqueue at m/mq;
 *  - a tmpfs made shared at m/shared (noatime), bound at m/peer (its peer)
 *    and at m/slave (made a slave of their group), one made unbindable at
 *    m/unb (noexec);
 *  - DIR/hostmnt unmounted: the suite mounts a tmpfs there (with a file
 *    "h") in the host's namespace; without one, the program mounts its own
 *    there first, so that the namespace lacks a mount either way.
 * It keeps m/t/hl open read-write at offset 3 and its cwd in m/t/sub. Its
 * child stays in the namespace, its cwd in m/t, and keeps the nested
 * tmpfs's file open.
 *
 * After GO each task checks all of it: the namespace is not PID 1's (and
 * the child's is its parent's), contents, modes, owners, the mtime, link
 * targets, inode numbers and link counts, node kinds, the descriptor's
 * offset and inode (a write through it is seen by the path and the hard
 * link), the mapping (a write through it is seen by a fresh descriptor),
 * the cwd, each mount's type, flags, super block options, propagation and
 * parent from /proc/self/mountinfo, the file system magic of proc, sysfs,
 * devpts and mqueue, the binds' contents (EROFS in the read-only one), and
 * that DIR/hostmnt is no mount point and has no "h".
 *
 * covered: a second tmpfs mounted over a first one at m/cov (the dump must
 * refuse it). childns: the child unshares a mount namespace of its own
 * from its parent's and mounts a tmpfs of its own at m/c with a file it
 * keeps open; after GO it checks that file, that its m/t is its parent's
 * (the same file system: a file the parent makes shows in it) and the
 * parent that m/c is no mount point in its namespace.
 *
 * Sabotage: data (a byte of big changed), owner (owned chowned to 0:0),
 * umount (m/bind unmounted), ro (m/robind remounted read-write), hostmnt (a
 * tmpfs mounted on DIR/hostmnt again), cwd (chdir("/")), offset (the kept
 * descriptor seeked to 0), shared (m/shared made private), peer (m/peer
 * made private).
 */
#include "testprog.h"

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/magic.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#ifndef MQUEUE_MAGIC
#define MQUEUE_MAGIC 0x19800202
#endif

#define BIG_SIZE   (6 << 20)
#define MAP_SIZE   (64 << 10)
#define BIG_SEED   1
#define MAP_SEED   7
#define HL_DATA	   "hard link\n"
#define OWNED_UID  1234
#define OWNED_GID  5678
#define MTIME_SEC  1500000000
#define MTIME_NSEC 123456789

static char base[2048];

/* DIR/REL, in one of a ring of buffers (a few at a time are live). */
static const char *at(const char *rel)
{
	static char bufs[16][4096];
	static int next;
	char *b = bufs[next++ % 16];

	snprintf(b, sizeof(bufs[0]), "%s/%s", base, rel);
	return b;
}

static unsigned char pat(size_t off, int seed)
{
	return (unsigned char)(tp_pattern(off / 8, seed) >> (off % 8 * 8));
}

static void put(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len)
		tp_die("write %s", path);
	if (fchmod(fd, mode))
		tp_die("chmod %s", path);
	close(fd);
}

static void put_str(const char *path, const char *s)
{
	put(path, s, strlen(s), 0644);
}

/* The file's first LEN-1 bytes, NUL-terminated; -1 (errno) when it cannot
 * be read. */
static ssize_t get(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	return n;
}

static void check_str(const char *who, const char *path, const char *want)
{
	char buf[256];

	if (get(path, buf, sizeof(buf)) < 0)
		tp_fail("%s: cannot read %s: %s", who, path, strerror(errno));
	else if (strcmp(buf, want))
		tp_fail("%s: %s reads \"%s\", expected \"%s\"", who, path, buf, want);
}

static void make_dir(const char *path, mode_t mode)
{
	if (mkdir(path, mode) && errno != EEXIST)
		tp_die("mkdir %s", path);
	if (chmod(path, mode))
		tp_die("chmod %s", path);
}

static void do_mount(const char *src, const char *target, const char *type, unsigned long flags,
		     const char *data)
{
	if (mount(src, target, type, flags, data))
		tp_die("mount %s (%s) on %s", src ? src : "-", type ? type : "-", target);
}

/* Check a file's contents against the pattern under SEED. */
static void check_pattern(const char *who, const char *path, size_t size, int seed)
{
	static unsigned char buf[64 << 10];
	struct stat st;
	size_t off = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st)) {
		tp_fail("%s: cannot open %s: %s", who, path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	if ((size_t)st.st_size != size)
		tp_fail("%s: %s has %lld bytes, expected %zu", who, path, (long long)st.st_size,
			size);
	while (off < size) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n <= 0) {
			tp_fail("%s: %s ends at %zu", who, path, off);
			break;
		}
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != pat(off + i, seed)) {
				tp_fail("%s: %s: byte %zu is %#x, expected %#x", who, path, off + i,
					buf[i], pat(off + i, seed));
				close(fd);
				return;
			}
		off += n;
	}
	close(fd);
}

static ino_t ns_ino(const char *pid)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%s/ns/mnt", pid);
	return stat(path, &st) ? 0 : st.st_ino;
}

static void check_cwd(const char *who, const char *want)
{
	char cwd[PATH_MAX];

	if (!getcwd(cwd, sizeof(cwd)))
		tp_fail("%s: getcwd: %s", who, strerror(errno));
	else if (strcmp(cwd, want))
		tp_fail("%s: cwd is %s, expected %s", who, cwd, want);
}

/* ---------------------------------------------------------------- mountinfo */

struct mnt {
	int id, parent;
	char root[1024], point[1024], opts[256], optional[256], fstype[64], super[512];
};

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
	char *d = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else {
			*d++ = *s++;
		}
	}
	*d = 0;
}

/* The topmost mount on PATH in /proc/self/mountinfo (the last line that
 * names it); false when none is. */
static bool find_mount(const char *path, struct mnt *m)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[8192];
	bool found = false;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		struct mnt cur;
		char *sep = strstr(line, " - ");
		int n = 0;

		if (!sep)
			continue;
		*sep = 0;
		memset(&cur, 0, sizeof(cur));
		if (sscanf(line, "%d %d %*s %1023s %1023s %255s%n", &cur.id, &cur.parent, cur.root,
			   cur.point, cur.opts, &n) < 5)
			continue;
		/* the optional fields, space-separated */
		snprintf(cur.optional, sizeof(cur.optional), "%s",
			 line + n + strspn(line + n, " "));
		if (sscanf(sep + 3, "%63s %*s %511s", cur.fstype, cur.super) < 1)
			continue;
		unescape(cur.root);
		unescape(cur.point);
		if (strcmp(cur.point, path))
			continue;
		*m = cur;
		found = true;
	}
	fclose(f);
	return found;
}

/* True when the comma-separated LIST has the item WANT. */
static bool has_item(const char *list, const char *want, const char *seps)
{
	size_t len = strlen(want);

	for (const char *p = list; p && *p;) {
		size_t l = strcspn(p, seps);

		if (l == len && !strncmp(p, want, len))
			return true;
		p += l;
		if (*p)
			p++;
	}
	return false;
}

/* The mount on REL (relative to DIR) exists with type FSTYPE (any when
 * NULL), each of the
 * comma-separated per-mount options OPTS and super block options SUPER;
 * its id (or -1). */
static int check_mount(const char *rel, const char *fstype, const char *opts, const char *super)
{
	const char *path = at(rel);
	char want[256], *tok, *save;
	struct mnt m;

	if (!find_mount(path, &m)) {
		tp_fail("%s is not a mount point", rel);
		return -1;
	}
	if (fstype && strcmp(m.fstype, fstype))
		tp_fail("%s: a %s mount, expected %s", rel, m.fstype, fstype);
	snprintf(want, sizeof(want), "%s", opts);
	for (tok = strtok_r(want, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		if (!has_item(m.opts, tok, ","))
			tp_fail("%s: mount options \"%s\" lack %s", rel, m.opts, tok);
	snprintf(want, sizeof(want), "%s", super);
	for (tok = strtok_r(want, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		if (!has_item(m.super, tok, ","))
			tp_fail("%s: super block options \"%s\" lack %s", rel, m.super, tok);
	return m.id;
}

/* The optional fields (propagation) of the mount on REL. */
static void propagation(const char *rel, char *buf, size_t len)
{
	struct mnt m;

	*buf = 0;
	if (find_mount(at(rel), &m))
		snprintf(buf, len, "%s", m.optional);
}

static void check_magic(const char *rel, long magic, const char *what)
{
	struct statfs sf;

	if (statfs(at(rel), &sf))
		tp_fail("statfs %s: %s", rel, strerror(errno));
	else if ((long)sf.f_type != magic)
		tp_fail("%s: file system magic %#lx, expected %#lx (%s)", rel, (long)sf.f_type,
			magic, what);
}

/* ---------------------------------------------------------------- set-up */

static void setup_hostmnt(void)
{
	struct mnt m;

	/* without the suite's host mount, one of our own, so that the
	 * namespace lacks a mount of its parent's either way */
	if (!find_mount(at("hostmnt"), &m)) {
		do_mount("stasis-hostmnt", at("hostmnt"), "tmpfs", 0, NULL);
		put_str(at("hostmnt/h"), "h\n");
	}
	if (access(at("hostmnt/h"), F_OK))
		tp_die("no %s", at("hostmnt/h"));
	if (umount(at("hostmnt")))
		tp_die("umount %s", at("hostmnt"));
}

static void setup_tmpfs(void)
{
	static unsigned char buf[64 << 10];
	const struct timespec times[2] = {{1400000000, 0}, {MTIME_SEC, MTIME_NSEC}};
	struct stat a, b;
	int fd;

	do_mount("stasis-t", at("m/t"), "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=0751");
	fd = open(at("m/t/big"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		tp_die("create big");
	for (size_t off = 0; off < BIG_SIZE; off += sizeof(buf)) {
		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = pat(off + i, BIG_SEED);
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			tp_die("write big");
	}
	close(fd);

	put_str(at("m/t/owned"), "owned\n");
	if (chown(at("m/t/owned"), OWNED_UID, OWNED_GID) || chmod(at("m/t/owned"), 0640) ||
	    utimensat(AT_FDCWD, at("m/t/owned"), times, 0))
		tp_die("owned");
	put(at("m/t/empty"), "", 0, 0600);
	make_dir(at("m/t/sub"), 0710);
	put_str(at("m/t/sub/file"), "in sub\n");
	if (symlink("sub/file", at("m/t/link")))
		tp_die("symlink");
	put_str(at("m/t/hl"), HL_DATA);
	if (link(at("m/t/hl"), at("m/t/big2")))
		tp_die("link");
	if (stat(at("m/t/hl"), &a) || stat(at("m/t/big2"), &b) || a.st_ino != b.st_ino ||
	    a.st_nlink != 2)
		tp_die("the hard link is not one");
	if (mkfifo(at("m/t/fifo"), 0620) || chmod(at("m/t/fifo"), 0620))
		tp_die("mkfifo");
	if (mknod(at("m/t/null"), S_IFCHR | 0644, makedev(1, 3)) || chmod(at("m/t/null"), 0644))
		tp_die("mknod");

	make_dir(at("m/t/sub/inner"), 0755);
	do_mount("stasis-inner", at("m/t/sub/inner"), "tmpfs", 0, NULL);
	put_str(at("m/t/sub/inner/file"), "inner\n");
}

static void setup_mounts(bool covered)
{
	static const char *const dirs[] = {"m/bind", "m/robind", "m/proc", "m/sys",  "m/pts",
					   "m/mq",   "m/shared", "m/unb",  "m/peer", "m/slave"};
	const char *hostdir = at("hostdir");

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		make_dir(at(dirs[i]), 0755);
	do_mount(hostdir, at("m/bind"), NULL, MS_BIND, NULL);
	do_mount(hostdir, at("m/robind"), NULL, MS_BIND, NULL);
	do_mount(NULL, at("m/robind"), NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL);
	do_mount("proc", at("m/proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	do_mount("sysfs", at("m/sys"), "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	do_mount("devpts", at("m/pts"), "devpts", MS_NOSUID | MS_NOEXEC, "newinstance");
	do_mount("mqueue", at("m/mq"), "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	do_mount("stasis-shared", at("m/shared"), "tmpfs", MS_NOATIME, "size=1m");
	do_mount(NULL, at("m/shared"), NULL, MS_SHARED, NULL);
	put_str(at("m/shared/s"), "shared\n");
	/* a peer of m/shared, and a slave of their group */
	do_mount(at("m/shared"), at("m/peer"), NULL, MS_BIND, NULL);
	do_mount(at("m/shared"), at("m/slave"), NULL, MS_BIND, NULL);
	do_mount(NULL, at("m/slave"), NULL, MS_SLAVE, NULL);
	do_mount("stasis-unb", at("m/unb"), "tmpfs", MS_NOEXEC, "size=1m");
	do_mount(NULL, at("m/unb"), NULL, MS_UNBINDABLE, NULL);
	put_str(at("m/unb/u"), "unbindable\n");
	if (covered) {
		make_dir(at("m/cov"), 0755);
		do_mount("stasis-cov1", at("m/cov"), "tmpfs", 0, NULL);
		put_str(at("m/cov/under"), "under\n");
		do_mount("stasis-cov2", at("m/cov"), "tmpfs", 0, NULL);
		put_str(at("m/cov/over"), "over\n");
	}
}

/* ---------------------------------------------------------------- checks */

static void check_files(void)
{
	struct stat st, st2;
	char buf[256];
	ssize_t n;

	check_pattern("parent", at("m/t/big"), BIG_SIZE, BIG_SEED);
	if (stat(at("m/t"), &st) || (st.st_mode & 07777) != 0751)
		tp_fail("m/t: mode %#o, expected 0751 (mode= of the tmpfs)", st.st_mode & 07777);

	if (stat(at("m/t/owned"), &st)) {
		tp_fail("m/t/owned: %s", strerror(errno));
	} else {
		if (st.st_uid != OWNED_UID || st.st_gid != OWNED_GID)
			tp_fail("m/t/owned: owner %u:%u, expected %u:%u", st.st_uid, st.st_gid,
				OWNED_UID, OWNED_GID);
		if ((st.st_mode & 07777) != 0640)
			tp_fail("m/t/owned: mode %#o, expected 0640", st.st_mode & 07777);
		if (st.st_mtim.tv_sec != MTIME_SEC || st.st_mtim.tv_nsec != MTIME_NSEC)
			tp_fail("m/t/owned: mtime %lld.%09ld, expected %d.%09d",
				(long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, MTIME_SEC,
				MTIME_NSEC);
	}
	check_str("parent", at("m/t/owned"), "owned\n");

	if (stat(at("m/t/empty"), &st) || !S_ISREG(st.st_mode) || st.st_size ||
	    (st.st_mode & 07777) != 0600)
		tp_fail("m/t/empty: not an empty file of mode 0600");

	if (stat(at("m/t/sub"), &st) || !S_ISDIR(st.st_mode) || (st.st_mode & 07777) != 0710)
		tp_fail("m/t/sub: not a directory of mode 0710 (%#o)", st.st_mode);
	check_str("parent", at("m/t/sub/file"), "in sub\n");

	n = readlink(at("m/t/link"), buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = 0;
	if (n < 0 || strcmp(buf, "sub/file"))
		tp_fail("m/t/link: points to \"%s\", expected \"sub/file\"", buf);
	check_str("parent", at("m/t/link"), "in sub\n");

	if (stat(at("m/t/hl"), &st) || stat(at("m/t/big2"), &st2))
		tp_fail("m/t/hl or big2: %s", strerror(errno));
	else if (st.st_ino != st2.st_ino || st.st_nlink != 2)
		tp_fail("m/t/big2 is no hard link of hl (inodes %lu %lu, %lu links)",
			(unsigned long)st.st_ino, (unsigned long)st2.st_ino,
			(unsigned long)st.st_nlink);

	if (lstat(at("m/t/fifo"), &st) || !S_ISFIFO(st.st_mode) || (st.st_mode & 07777) != 0620)
		tp_fail("m/t/fifo: not a FIFO of mode 0620 (%#o)", st.st_mode);
	if (lstat(at("m/t/null"), &st) || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3) ||
	    (st.st_mode & 07777) != 0644)
		tp_fail("m/t/null: not the character device 1,3 of mode 0644 (%#o, %u,%u)",
			st.st_mode, major(st.st_rdev), minor(st.st_rdev));

	check_str("parent", at("m/t/sub/inner/file"), "inner\n");
	check_str("parent", at("m/shared/s"), "shared\n");
	check_str("parent", at("m/unb/u"), "unbindable\n");
}

static void check_fd(int fd)
{
	struct stat st, st2;
	off_t off = lseek(fd, 0, SEEK_CUR);
	char c;

	if (off != 3)
		tp_fail("the descriptor of m/t/hl is at offset %lld, expected 3", (long long)off);
	if (fstat(fd, &st) || stat(at("m/t/hl"), &st2))
		tp_fail("fstat/stat m/t/hl: %s", strerror(errno));
	else if (st.st_ino != st2.st_ino || st.st_dev != st2.st_dev)
		tp_fail("the descriptor is not on m/t/hl (inode %lu dev %#lx, the path's %lu %#lx)",
			(unsigned long)st.st_ino, (unsigned long)st.st_dev,
			(unsigned long)st2.st_ino, (unsigned long)st2.st_dev);
	/* at the descriptor's offset */
	if (write(fd, "X", 1) != 1) {
		tp_fail("write through the descriptor of m/t/hl: %s", strerror(errno));
		return;
	}
	for (int i = 0; i < 2; i++) {
		const char *p = at(i ? "m/t/big2" : "m/t/hl");
		int rfd = open(p, O_RDONLY | O_CLOEXEC);

		if (rfd < 0 || pread(rfd, &c, 1, 3) != 1 || c != 'X')
			tp_fail("the write through the descriptor is not seen in %s", p);
		if (rfd >= 0)
			close(rfd);
	}
}

static void check_map(unsigned char *map)
{
	char perms[5], path[4096];
	unsigned char c = 0;
	int fd;

	if (tp_maps_entry(map, perms, NULL, path, sizeof(path)))
		tp_fail("nothing mapped at %p", (void *)map);
	else if (strcmp(perms, "rw-s") || strcmp(path, at("m/t/map")))
		tp_fail("the mapping is %s %s, expected rw-s %s", perms, path, at("m/t/map"));
	for (size_t i = 0; i < MAP_SIZE; i++)
		if (map[i] != pat(i, MAP_SEED)) {
			tp_fail("the mapping of m/t/map: byte %zu is %#x, expected %#x", i, map[i],
				pat(i, MAP_SEED));
			break;
		}
	map[100] ^= 0xff;
	fd = open(at("m/t/map"), O_RDONLY | O_CLOEXEC);
	if (fd < 0 || pread(fd, &c, 1, 100) != 1 || c != map[100])
		tp_fail("a write through the mapping is not seen in m/t/map");
	if (fd >= 0)
		close(fd);
}

static void check_mounts(bool covered)
{
	char prop[256];
	struct stat st, st2;
	struct mnt m;
	int t, inner, fd;

	t = check_mount("m/t", "tmpfs", "rw,nosuid,nodev", "size=16384k,mode=751");
	inner = check_mount("m/t/sub/inner", "tmpfs", "rw", "");
	if (inner >= 0 && find_mount(at("m/t/sub/inner"), &m) && m.parent != t)
		tp_fail("m/t/sub/inner: mounted on mount %d, not on m/t (%d)", m.parent, t);
	check_mount("m/bind", NULL, "rw", "");
	check_mount("m/robind", NULL, "ro", "");
	check_mount("m/proc", "proc", "nosuid,nodev,noexec", "");
	check_mount("m/sys", "sysfs", "nosuid,nodev,noexec", "");
	check_mount("m/pts", "devpts", "nosuid,noexec", "");
	check_mount("m/mq", "mqueue", "nosuid,nodev,noexec", "");
	check_mount("m/shared", "tmpfs", "noatime", "size=1024k");
	check_mount("m/unb", "tmpfs", "noexec", "size=1024k");
	if (covered)
		check_str("parent", at("m/cov/over"), "over\n");

	propagation("m/shared", prop, sizeof(prop));
	if (strncmp(prop, "shared:", 7) && !strstr(prop, " shared:"))
		tp_fail("m/shared: propagation \"%s\", expected shared:N", prop);
	{
		char peer[256], slave[256], *group = strstr(prop, "shared:"), want[64];
		size_t n = group ? strcspn(group + 7, " ") : 0;

		propagation("m/peer", peer, sizeof(peer));
		propagation("m/slave", slave, sizeof(slave));
		/* the peer shows the same shared:N, the slave master:N and no group */
		snprintf(want, sizeof(want), "shared:%.*s", (int)n, group ? group + 7 : "");
		if (!group || !has_item(peer, want, " "))
			tp_fail("m/peer: propagation \"%s\", expected %s as m/shared (\"%s\")",
				peer, want, prop);
		snprintf(want, sizeof(want), "master:%.*s", (int)n, group ? group + 7 : "");
		if (!group || !has_item(slave, want, " ") || strstr(slave, "shared:"))
			tp_fail("m/slave: propagation \"%s\", expected %s only (m/shared: \"%s\")",
				slave, want, prop);
	}
	propagation("m/unb", prop, sizeof(prop));
	if (!has_item(prop, "unbindable", " "))
		tp_fail("m/unb: propagation \"%s\", expected unbindable", prop);
	propagation("m/t", prop, sizeof(prop));
	if (*prop)
		tp_fail("m/t: propagation \"%s\", expected private", prop);

	check_magic("m/proc", PROC_SUPER_MAGIC, "proc");
	if (access(at("m/proc/self"), F_OK))
		tp_fail("no m/proc/self: %s", strerror(errno));
	check_magic("m/sys", SYSFS_MAGIC, "sysfs");
	check_magic("m/pts", DEVPTS_SUPER_MAGIC, "devpts");
	if (access(at("m/pts/ptmx"), F_OK))
		tp_fail("no m/pts/ptmx: %s", strerror(errno));
	check_magic("m/mq", MQUEUE_MAGIC, "mqueue");
	check_magic("m/t", TMPFS_MAGIC, "tmpfs");

	/* the binds show hostdir itself */
	if (stat(at("hostdir"), &st) || stat(at("m/bind"), &st2) || st.st_ino != st2.st_ino ||
	    st.st_dev != st2.st_dev)
		tp_fail("m/bind is not hostdir");
	check_str("parent", at("m/bind/marker"), "host");
	check_str("parent", at("m/robind/marker"), "host");
	fd = open(at("m/robind/new"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0) {
		tp_fail("m/robind: a file could be made in the read-only bind");
		close(fd);
		unlink(at("m/robind/new"));
	} else if (errno != EROFS) {
		tp_fail("m/robind: making a file failed with %s, expected EROFS", strerror(errno));
	}

	/* the host's mount is not in the namespace */
	if (find_mount(at("hostmnt"), &m))
		tp_fail("hostmnt is a mount point (%s) in the namespace", m.fstype);
	if (!access(at("hostmnt/h"), F_OK))
		tp_fail("hostmnt/h exists in the namespace");
}

/* ---------------------------------------------------------------- tasks */

static int child(bool childns, int ready)
{
	char buf[64];
	struct stat st, st2;
	int fd, cfd, i;

	tp_nfail = 0;
	tp_faillen = 0;
	if (childns && unshare(CLONE_NEWNS))
		tp_die("child: unshare(CLONE_NEWNS)");
	if (childns) {
		make_dir(at("m/c"), 0755);
		do_mount("stasis-child", at("m/c"), "tmpfs", 0, "size=1m");
		put_str(at("m/c/own"), "child's own\n");
	}
	cfd = childns ? open(at("m/c/own"), O_RDONLY | O_CLOEXEC) : -1;
	if (childns && cfd < 0)
		tp_die("child: open m/c/own");
	if (chdir(at("m/t")))
		tp_die("child: chdir");
	fd = open(at("m/t/sub/inner/file"), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		tp_die("child: open inner/file");
	if (write(ready, "r", 1) != 1)
		tp_die("child: write");
	close(ready);
	tp_wait_go();

	check_cwd("child", at("m/t"));
	check_pattern("child", at("m/t/big"), BIG_SIZE, BIG_SEED);
	snprintf(buf, sizeof(buf), "%d", (int)getppid());
	if (!childns && ns_ino("self") != ns_ino(buf))
		tp_fail("child: in a mount namespace other than its parent's");
	if (childns && ns_ino("self") == ns_ino(buf))
		tp_fail("child: in its parent's mount namespace, not its own");
	if (childns) {
		if (pread(cfd, buf, 12, 0) != 12 || memcmp(buf, "child's own\n", 12))
			tp_fail("child: m/c/own through its descriptor is not \"child's own\"");
		if (fstat(cfd, &st) || stat(at("m/c/own"), &st2) || st.st_ino != st2.st_ino ||
		    st.st_dev != st2.st_dev)
			tp_fail("child: its descriptor is not on m/c/own");
		/* the parent makes m/t/from-parent after GO: the same tmpfs shows it */
		for (i = 0; i < 300 && access(at("m/t/from-parent"), F_OK); i++)
			usleep(10000);
		if (i == 300)
			tp_fail("child: m/t/from-parent never showed: its m/t is not its parent's");
	}
	if (fstat(fd, &st) || stat(at("m/t/sub/inner/file"), &st2) || st.st_ino != st2.st_ino ||
	    st.st_dev != st2.st_dev)
		tp_fail("child: its descriptor is not on m/t/sub/inner/file");
	else if (pread(fd, buf, 6, 0) != 6 || memcmp(buf, "inner\n", 6))
		tp_fail("child: m/t/sub/inner/file through its descriptor is not \"inner\"");
	if (tp_nfail) {
		printf("FAIL (child): %s\n", tp_fails);
		fflush(stdout);
	}
	_exit(tp_nfail ? 1 : 0);
}

int main(int argc, char **argv)
{
	char dir[2048], c;
	const char *mode;
	bool covered, childns;
	unsigned char *map;
	int fd, mfd, pipefd[2], status;
	pid_t pid;

	tp_init(argc, argv, 1, "GOFILE [covered|childns]");
	mode = argc > 2 ? argv[2] : "";
	covered = !strcmp(mode, "covered");
	childns = !strcmp(mode, "childns");
	snprintf(dir, sizeof(dir), "%s", tp_gofile);
	if (!realpath(dirname(dir), base))
		tp_die("realpath %s", tp_gofile);

	make_dir(at("hostdir"), 0755);
	if (access(at("hostdir/marker"), F_OK))
		put(at("hostdir/marker"), "host", 4, 0644);
	make_dir(at("hostmnt"), 0755);
	make_dir(at("m"), 0755);
	make_dir(at("m/t"), 0755);

	if (unshare(CLONE_NEWNS))
		tp_die("unshare(CLONE_NEWNS)");
	do_mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	setup_hostmnt();
	setup_tmpfs();
	setup_mounts(covered);

	if (pipe2(pipefd, O_CLOEXEC))
		tp_die("pipe");
	pid = fork();
	if (pid < 0)
		tp_die("fork");
	if (pid == 0) {
		close(pipefd[0]);
		return child(childns, pipefd[1]);
	}
	close(pipefd[1]);
	if (read(pipefd[0], &c, 1) != 1)
		tp_die("the child did not get ready");
	close(pipefd[0]);

	fd = open(at("m/t/hl"), O_RDWR | O_CLOEXEC);
	if (fd < 0 || lseek(fd, 3, SEEK_SET) != 3)
		tp_die("open m/t/hl");
	mfd = open(at("m/t/map"), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (mfd < 0 || ftruncate(mfd, MAP_SIZE))
		tp_die("m/t/map");
	map = mmap(NULL, MAP_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (map == MAP_FAILED)
		tp_die("mmap m/t/map");
	close(mfd);
	for (size_t i = 0; i < MAP_SIZE; i++)
		map[i] = pat(i, MAP_SEED);
	if (chdir(at("m/t/sub")))
		tp_die("chdir m/t/sub");

	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("data")) {
		int s = open(at("m/t/big"), O_RDWR | O_CLOEXEC);
		unsigned char b = (unsigned char)~pat((4 << 20) + 5, BIG_SEED);

		if (s < 0 || pwrite(s, &b, 1, (4 << 20) + 5) != 1)
			tp_die("sabotage data");
		close(s);
	}
	if (tp_sabotaged("owner") && chown(at("m/t/owned"), 0, 0))
		tp_die("sabotage owner");
	if (tp_sabotaged("umount") && umount2(at("m/bind"), MNT_DETACH))
		tp_die("sabotage umount");
	if (tp_sabotaged("ro"))
		do_mount(NULL, at("m/robind"), NULL, MS_REMOUNT | MS_BIND, NULL);
	if (tp_sabotaged("hostmnt"))
		do_mount("stasis-again", at("hostmnt"), "tmpfs", 0, NULL);
	if (tp_sabotaged("cwd") && chdir("/"))
		tp_die("sabotage cwd");
	if (tp_sabotaged("offset"))
		lseek(fd, 0, SEEK_SET);
	if (tp_sabotaged("shared"))
		do_mount(NULL, at("m/shared"), NULL, MS_PRIVATE, NULL);
	if (tp_sabotaged("peer"))
		do_mount(NULL, at("m/peer"), NULL, MS_PRIVATE, NULL);

	if (ns_ino("self") == ns_ino("1"))
		tp_fail("in PID 1's mount namespace");
	check_cwd("parent", at("m/t/sub"));
	check_fd(fd);
	check_map(map);
	check_files();
	check_mounts(covered);
	if (childns) {
		struct mnt m;

		if (find_mount(at("m/c"), &m))
			tp_fail("m/c, the child's own mount, is a mount point (%s) here", m.fstype);
		/* the child looks for it in its m/t */
		put_str(at("m/t/from-parent"), "p");
	}

	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		tp_fail("the child failed (status %#x)", status);
	return tp_finish();
}
