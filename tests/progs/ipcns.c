/* ipcns GOFILE [hostns|forced|mqueue]
 *
 * SysV IPC in an IPC namespace of its own (the program unshares it first,
 * as root), with ids the namespace would not give by itself:
 *  - segment A (key, 3 pages and 100 bytes, mode 0640, made as euid 123):
 *    attached read-write, its last page made read-only by mprotect (two
 *    pieces of one attach), patterned; its child inherits the attach;
 *  - segment B (IPC_PRIVATE): filled through an attach that is gone, and
 *    attached read-only (SHM_RDONLY);
 *  - segment C: attached, then removed (IPC_RMID: SHM_DEST, its key gone);
 *  - segment D: attached by nobody, owner 1000:1001, data at 1 MiB;
 *  - a set of 5 semaphores with values, owner changed, mode 0600;
 *  - a queue of 5 messages of types 1, 2, 3, 1, 7, one of 10000 bytes
 *    (above the default kernel.msgmax), its size 60000 (kernel.msgmnb
 *    raised for it, then lowered); and an empty queue;
 *  - sysctls: kernel.msgmax 12345, kernel.msgmnb 20000, kernel.shmmni
 *    1000, kernel.sem "250 32000 32 128", fs.mqueue.queues_max 77.
 * After GO, everything is checked: ids, keys, owners, creators, modes,
 * sizes, attach counts, contents, the mappings' protections (a write
 * through A is seen by a new attach; B cannot be made writable), the
 * values, the messages in order, the sysctls; the child writes through
 * its attach of A and the parent sees it.
 *
 * hostns: no namespace of its own, one segment attached (and removed, so
 * that it goes with the program): the dump must refuse it. forced:
 * kernel.shm_rmid_forced 1 and segment D attached by nobody: refused too.
 * mqueue: a POSIX message queue in the namespace besides (its descriptor
 * closed): refused.
 *
 * Sabotage (STASIS_SABOTAGE): "ipc-shm" changes a byte of D, "ipc-sem" a
 * semaphore's value, "ipc-msg" takes a message out of the queue,
 * "ipc-sysctl" writes kernel.msgmax, "ipc-attach" replaces the attach of
 * A by anonymous memory with the same contents.
 */
#include "testprog.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define KEY_A	0x5157a001
#define KEY_SEM 0x5157b002
#define KEY_MSG 0x5157c003
#define ID_A	1234
#define ID_B	40000 /* index 7232, sequence 1 */
#define ID_C	7
#define ID_D	99
#define ID_SEM	77
#define ID_MSG	4321
#define ID_MSG2 5
#define NSEMS	5
#define NMSGS	5

static long pg;
static size_t size_a, size_d = (1 << 20) + 5000;
static unsigned char *a, *b, *c;
static const unsigned short semvals[NSEMS] = {0, 1, 2, 300, 32767};
static const long mtypes[NMSGS] = {1, 2, 3, 1, 7};
static const size_t msizes[NMSGS] = {1, 100, 10000, 0, 777};

static unsigned char pat(size_t off, int which)
{
	return (unsigned char)(tp_pattern(off / 8, which) >> (off % 8 * 8));
}

static void fill(unsigned char *p, size_t from, size_t len, int which)
{
	for (size_t i = from; i < from + len; i++)
		p[i] = pat(i, which);
}

static void check_data(const char *what, const unsigned char *p, size_t from, size_t len, int which)
{
	for (size_t i = from; i < from + len; i++)
		if (p[i] != pat(i, which)) {
			tp_fail("%s: byte %zu is %#x, expected %#x", what, i, p[i], pat(i, which));
			return;
		}
}

static void write_file(const char *path, const char *v)
{
	int fd = open(path, O_WRONLY);

	if (fd < 0 || write(fd, v, strlen(v)) != (ssize_t)strlen(v))
		tp_die("write %s to %s", v, path);
	close(fd);
}

static void read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, len - 1);

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = 0;
	buf[strcspn(buf, "\n")] = 0;
}

static void next_id(const char *kind, int id)
{
	char path[64], v[32];

	snprintf(path, sizeof(path), "/proc/sys/kernel/%s_next_id", kind);
	snprintf(v, sizeof(v), "%d", id);
	write_file(path, v);
}

static void msg_text(char *t, size_t len, int i)
{
	for (size_t j = 0; j < len; j++)
		t[j] = (char)('a' + (i * 7 + j) % 26);
}

static int shm_make(key_t key, int id, size_t size, int mode)
{
	int got;

	next_id("shm", id);
	got = shmget(key, size, IPC_CREAT | IPC_EXCL | mode);
	if (got != id)
		tp_die("shmget gave %d, not %d", got, id);
	return got;
}

static void check_perm(const char *what, const struct ipc_perm *p, key_t key, uid_t uid, gid_t gid,
		       uid_t cuid, gid_t cgid, int mode)
{
	if (p->__key != key)
		tp_fail("%s: key %#x, expected %#x", what, p->__key, key);
	if (p->uid != uid || p->gid != gid || p->cuid != cuid || p->cgid != cgid)
		tp_fail("%s: owner %u:%u creator %u:%u, expected %u:%u %u:%u", what, p->uid, p->gid,
			p->cuid, p->cgid, uid, gid, cuid, cgid);
	if ((int)(p->mode & 03777) != mode)
		tp_fail("%s: mode %#o, expected %#o", what, p->mode & 03777, mode);
}

static void check_shm(const char *what, int id, key_t key, size_t size, unsigned nattch, uid_t uid,
		      gid_t gid, uid_t cuid, gid_t cgid, int mode)
{
	struct shmid_ds ds;

	if (shmctl(id, IPC_STAT, &ds)) {
		tp_fail("%s: segment %d: %s", what, id, strerror(errno));
		return;
	}
	check_perm(what, &ds.shm_perm, key, uid, gid, cuid, cgid, mode);
	if (ds.shm_segsz != size)
		tp_fail("%s: size %zu, expected %zu", what, (size_t)ds.shm_segsz, size);
	if (ds.shm_nattch != nattch)
		tp_fail("%s: attached %lu times, expected %u", what, (unsigned long)ds.shm_nattch,
			nattch);
}

static void check_maps(const char *what, const void *at, const char *perms)
{
	char p[5], path[256];

	if (tp_maps_entry(at, p, NULL, path, sizeof(path)))
		tp_fail("%s: nothing mapped at %p", what, at);
	else if (strcmp(p, perms) || strncmp(path, "/SYSV", 5))
		tp_fail("%s: %s %s at %p, expected %s /SYSV...", what, p, path, at, perms);
}

static int child(void)
{
	tp_nfail = 0;
	tp_faillen = 0;
	tp_wait_go();
	check_data("child: A", a, 0, 2 * pg, 1);
	check_maps("child: A", a, "rw-s");
	/* seen by the parent through its own attach */
	memset(a + pg, 0x5a, 16);
	if (tp_nfail)
		printf("FAIL (child): %s\n", tp_fails);
	fflush(stdout);
	_exit(tp_nfail ? 1 : 0);
}

static void sysctl_is(const char *name, const char *want)
{
	char path[128], v[128];

	snprintf(path, sizeof(path), "/proc/sys/%s", name);
	read_file(path, v, sizeof(v));
	/* kernel.sem reads back with tabs */
	for (char *q = v; *q; q++)
		if (*q == '\t')
			*q = ' ';
	if (strcmp(v, want))
		tp_fail("%s is \"%s\", expected \"%s\"", name, v, want);
}

static int hostns(void)
{
	int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
	void *p = id < 0 ? (void *)-1 : shmat(id, NULL, 0);

	if (p == (void *)-1)
		tp_die("shmget/shmat");
	/* removed: it goes with the program, whatever happens */
	shmctl(id, IPC_RMID, NULL);
	memset(p, 7, 4096);
	tp_ready();
	tp_wait_go();
	if (((unsigned char *)p)[100] != 7)
		tp_fail("the segment's data changed");
	return tp_finish();
}

int main(int argc, char **argv)
{
	const char *mode;
	struct semid_ds sds;
	struct msqid_ds mds;
	union {
		long mtype;
		char buf[sizeof(long) + 20000];
	} m;
	unsigned short vals[NSEMS];
	unsigned char *tmp, *d;
	int ida, idb, idc, idd, ids, idq, idq2, status;
	pid_t pid;

	tp_init(argc, argv, 1, "GOFILE [hostns|forced|mqueue]");
	mode = argc > 2 ? argv[2] : "";
	pg = sysconf(_SC_PAGESIZE);
	size_a = 3 * pg + 100;
	if (!strcmp(mode, "hostns"))
		return hostns();
	if (unshare(CLONE_NEWIPC))
		tp_die("unshare(CLONE_NEWIPC)");

	write_file("/proc/sys/kernel/msgmax", "12345");
	write_file("/proc/sys/kernel/shmmni", "1000");
	write_file("/proc/sys/kernel/sem", "250 32000 32 128");
	write_file("/proc/sys/fs/mqueue/queues_max", "77");

	/* A, made as euid 123 (the sysctl is root's: its value waits for
	 * the next creation) */
	next_id("shm", ID_A);
	if (setegid(456) || seteuid(123))
		tp_die("seteuid");
	ida = shmget(KEY_A, size_a, IPC_CREAT | IPC_EXCL | 0640);
	if (seteuid(0) || setegid(0))
		tp_die("seteuid back");
	if (ida != ID_A)
		tp_die("shmget A gave %d", ida);
	a = shmat(ida, NULL, 0);
	if (a == (void *)-1)
		tp_die("shmat A");
	fill(a, 0, size_a, 1);
	if (mprotect(a + 3 * pg, pg, PROT_READ))
		tp_die("mprotect A");

	idb = shm_make(IPC_PRIVATE, ID_B, 2 * pg, 0600);
	tmp = shmat(idb, NULL, 0);
	if (tmp == (void *)-1)
		tp_die("shmat B");
	fill(tmp, 0, 2 * pg, 2);
	shmdt(tmp);
	b = shmat(idb, NULL, SHM_RDONLY);
	if (b == (void *)-1)
		tp_die("shmat B read-only");

	idc = shm_make(0x5157a0cc, ID_C, pg, 0666);
	c = shmat(idc, NULL, 0);
	if (c == (void *)-1)
		tp_die("shmat C");
	fill(c, 0, pg, 3);
	if (shmctl(idc, IPC_RMID, NULL))
		tp_die("IPC_RMID C");

	idd = shm_make(0x5157a0dd, ID_D, size_d, 0604);
	tmp = shmat(idd, NULL, 0);
	if (tmp == (void *)-1)
		tp_die("shmat D");
	fill(tmp, 1 << 20, 5000, 4);
	shmdt(tmp);
	{
		struct shmid_ds ds;

		if (shmctl(idd, IPC_STAT, &ds))
			tp_die("IPC_STAT D");
		ds.shm_perm.uid = 1000;
		ds.shm_perm.gid = 1001;
		if (shmctl(idd, IPC_SET, &ds))
			tp_die("IPC_SET D");
	}

	next_id("sem", ID_SEM);
	ids = semget(KEY_SEM, NSEMS, IPC_CREAT | IPC_EXCL | 0600);
	if (ids != ID_SEM)
		tp_die("semget gave %d", ids);
	if (semctl(ids, 0, SETALL, semvals))
		tp_die("SETALL");
	if (semctl(ids, 0, IPC_STAT, &sds))
		tp_die("sem IPC_STAT");
	sds.sem_perm.uid = 2000;
	sds.sem_perm.gid = 2001;
	if (semctl(ids, 0, IPC_SET, &sds))
		tp_die("sem IPC_SET");

	write_file("/proc/sys/kernel/msgmnb", "60000");
	next_id("msg", ID_MSG);
	idq = msgget(KEY_MSG, IPC_CREAT | IPC_EXCL | 0620);
	if (idq != ID_MSG)
		tp_die("msgget gave %d", idq);
	write_file("/proc/sys/kernel/msgmnb", "20000");
	for (int i = 0; i < NMSGS; i++) {
		m.mtype = mtypes[i];
		msg_text(m.buf + sizeof(long), msizes[i], i);
		if (msgsnd(idq, &m, msizes[i], IPC_NOWAIT))
			tp_die("msgsnd %d", i);
	}
	next_id("msg", ID_MSG2);
	idq2 = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	if (idq2 != ID_MSG2)
		tp_die("msgget 2 gave %d", idq2);

	if (!strcmp(mode, "forced"))
		write_file("/proc/sys/kernel/shm_rmid_forced", "1");
	if (!strcmp(mode, "mqueue")) {
		long fd = syscall(SYS_mq_open, "stasis-test", O_CREAT | O_RDWR, 0600, NULL);

		if (fd < 0)
			tp_die("mq_open");
		close(fd);
	}

	pid = fork();
	if (pid < 0)
		tp_die("fork");
	if (pid == 0)
		return child();

	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("ipc-shm")) {
		tmp = shmat(idd, NULL, 0);
		if (tmp != (void *)-1) {
			tmp[(1 << 20) + 10] ^= 1;
			shmdt(tmp);
		}
	}
	if (tp_sabotaged("ipc-sem"))
		semctl(ids, 3, SETVAL, 301);
	if (tp_sabotaged("ipc-msg"))
		msgrcv(idq, &m, 20000, 2, IPC_NOWAIT);
	if (tp_sabotaged("ipc-sysctl"))
		write_file("/proc/sys/kernel/msgmax", "12346");
	if (tp_sabotaged("ipc-attach")) {
		void *copy = malloc(4 * pg);

		memcpy(copy, a, 4 * pg);
		shmdt(a);
		if (mmap(a, 4 * pg, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_SHARED | MAP_ANONYMOUS,
			 -1, 0) != a)
			tp_die("mmap over A");
		memcpy(a, copy, 4 * pg);
		free(copy);
	}

	/* the child first: its write through A */
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		tp_fail("the child failed (status %#x)", status);
	else if (a[pg] != 0x5a || a[pg + 15] != 0x5a)
		tp_fail("A: the child's write is not seen");
	else
		fill(a, pg, 16, 1);

	sysctl_is("kernel/msgmax", "12345");
	sysctl_is("kernel/msgmnb", "20000");
	sysctl_is("kernel/shmmni", "1000");
	sysctl_is("kernel/sem", "250 32000 32 128");
	sysctl_is("kernel/shm_rmid_forced", strcmp(mode, "forced") ? "0" : "1");
	sysctl_is("kernel/shm_next_id", "-1");
	sysctl_is("fs/mqueue/queues_max", "77");

	/* each piece of the attach counts */
	check_shm("A", ID_A, KEY_A, size_a, 2, 123, 456, 123, 456, 0640);
	check_data("A", a, 0, size_a, 1);
	check_maps("A", a, "rw-s");
	check_maps("A's last page", a + 3 * pg, "r--s");
	a[5] ^= 0xff;
	tmp = shmat(ID_A, NULL, SHM_RDONLY);
	if (tmp == (void *)-1 || tmp[5] != a[5])
		tp_fail("A: a write through the attach is not in the segment");
	if (tmp != (void *)-1)
		shmdt(tmp);
	a[5] ^= 0xff;

	check_shm("B", ID_B, IPC_PRIVATE, 2 * pg, 1, 0, 0, 0, 0, 0600);
	check_data("B", b, 0, 2 * pg, 2);
	check_maps("B", b, "r--s");
	if (!mprotect(b, pg, PROT_READ | PROT_WRITE))
		tp_fail("B: attached SHM_RDONLY, it can be made writable");

	check_shm("C", ID_C, IPC_PRIVATE, pg, 1, 0, 0, 0, 0, 0666 | SHM_DEST);
	check_data("C", c, 0, pg, 3);
	check_maps("C", c, "rw-s");

	check_shm("D", ID_D, 0x5157a0dd, size_d, 0, 1000, 1001, 0, 0, 0604);
	d = shmat(ID_D, NULL, SHM_RDONLY);
	if (d == (void *)-1) {
		tp_fail("D: cannot attach: %s", strerror(errno));
	} else {
		for (size_t i = 0; i < (1 << 20); i++)
			if (d[i]) {
				tp_fail("D: byte %zu is %#x, expected 0", i, d[i]);
				break;
			}
		check_data("D", d, 1 << 20, 5000, 4);
		shmdt(d);
	}

	if (semctl(ID_SEM, 0, IPC_STAT, &sds)) {
		tp_fail("semaphore set %d: %s", ID_SEM, strerror(errno));
	} else {
		check_perm("semaphores", &sds.sem_perm, KEY_SEM, 2000, 2001, 0, 0, 0600);
		if (sds.sem_nsems != NSEMS)
			tp_fail("%lu semaphores, expected %d", (unsigned long)sds.sem_nsems, NSEMS);
		else if (semctl(ID_SEM, 0, GETALL, vals))
			tp_fail("GETALL: %s", strerror(errno));
		else
			for (int i = 0; i < NSEMS; i++)
				if (vals[i] != semvals[i])
					tp_fail("semaphore %d is %u, expected %u", i, vals[i],
						semvals[i]);
	}

	if (msgctl(ID_MSG2, IPC_STAT, &mds))
		tp_fail("queue %d: %s", ID_MSG2, strerror(errno));
	else if (mds.msg_qnum || mds.msg_perm.__key != IPC_PRIVATE)
		tp_fail("queue %d: %lu messages, key %#x", ID_MSG2, (unsigned long)mds.msg_qnum,
			mds.msg_perm.__key);
	if (msgctl(ID_MSG, IPC_STAT, &mds)) {
		tp_fail("queue %d: %s", ID_MSG, strerror(errno));
	} else {
		check_perm("queue", &mds.msg_perm, KEY_MSG, 0, 0, 0, 0, 0620);
		if (mds.msg_qbytes != 60000)
			tp_fail("queue: %lu bytes, expected 60000", (unsigned long)mds.msg_qbytes);
		if (mds.msg_qnum != NMSGS)
			tp_fail("queue: %lu messages, expected %d", (unsigned long)mds.msg_qnum,
				NMSGS);
		for (int i = 0; i < NMSGS; i++) {
			char want[20000];
			ssize_t n = msgrcv(ID_MSG, &m, 20000, 0, IPC_NOWAIT);

			msg_text(want, msizes[i], i);
			if (n < 0) {
				tp_fail("message %d: %s", i, strerror(errno));
				break;
			}
			if (m.mtype != mtypes[i] || (size_t)n != msizes[i] ||
			    memcmp(m.buf + sizeof(long), want, n)) {
				tp_fail(
				    "message %d: type %ld, %zd bytes, expected type %ld, %zu bytes",
				    i, m.mtype, n, mtypes[i], msizes[i]);
				break;
			}
		}
	}
	return tp_finish();
}
