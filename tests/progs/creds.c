/* creds GOFILE
 *
 * Credentials and seccomp filters, different in each of two threads (raw
 * system calls: glibc would apply set*id to every thread).
 *
 * main thread: uids 1000/1001/1002 fs 1003, gids 1000/1001/1002 fs 1003,
 *   groups 100 1000 2000, permitted {dac_read_search, net_bind_service,
 *   kill}, effective {dac_read_search, net_bind_service}, inheritable and
 *   ambient {net_bind_service} ({dac_read_search} inheritable too), bounding
 *   set without sys_admin, net_raw, sys_module, securebits keep_caps |
 *   noroot | noroot_locked, no_new_privs, parent-death signal SIGUSR2 (set
 *   after the uid change, which resets it), seccomp filters F0 (getpgid ->
 *   EPERM), F1 (getppid -> EPERM, SECCOMP_FILTER_FLAG_LOG), F3 (getpgid ->
 *   EACCES: the newest filter's errno wins, so the order shows).
 * second thread: uids 2000/2001/2002, gids 2000, permitted = effective =
 *   {dac_read_search}, no inheritable or ambient, no no_new_privs, filters
 *   F0 (inherited: shared with main) and F2 (getsid -> EPERM).
 *
 * After GO each thread compares its whole state with what it was at READY,
 * checks that its filters still deny exactly their call (EPERM) and let the
 * others through, and that it still cannot do what it could not: become
 * root, open /etc/shadow for writing, signal PID 1 (kill is permitted, not
 * effective), raise a capability it lacks.
 *
 * STASIS_SABOTAGE=creds changes the main thread's effective uid after GO;
 * =seccomp adds a filter denying getsid to the main thread.
 */
#include "testprog.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/securebits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define BIT(c) (1ull << (c))
#define NGROUPS 3

struct cstate {
	long ids[8]; /* uid euid suid fsuid gid egid sgid fsgid */
	int ngroups;
	gid_t groups[64];
	unsigned long long eff, prm, inh, bnd, amb;
	long secbits, nnp, dumpable, pdeath;
	int filters;
};

static int last_cap;
static struct cstate main_at_ready, thread_at_ready;
static volatile int thread_stage; /* 1 set up, 2 go, 3 checked */

static void get_caps(unsigned long long *eff, unsigned long long *prm, unsigned long long *inh)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		tp_die("capget");
	*eff = d[0].effective | (uint64_t)d[1].effective << 32;
	*prm = d[0].permitted | (uint64_t)d[1].permitted << 32;
	*inh = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
}

static long set_caps(uint64_t eff, uint64_t prm, uint64_t inh)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	for (int i = 0; i < 2; i++) {
		d[i].effective = eff >> (32 * i);
		d[i].permitted = prm >> (32 * i);
		d[i].inheritable = inh >> (32 * i);
	}
	return syscall(SYS_capset, &h, d);
}

static int seccomp_filters(void)
{
	char line[256];
	int n = -1;
	FILE *f = fopen("/proc/thread-self/status", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Seccomp_filters: %d", &n) == 1)
			break;
	fclose(f);
	return n;
}

static void read_state(struct cstate *s)
{
	uid_t u[3];
	gid_t g[3];

	memset(s, 0, sizeof(*s));
	getresuid(&u[0], &u[1], &u[2]);
	getresgid(&g[0], &g[1], &g[2]);
	for (int i = 0; i < 3; i++) {
		s->ids[i] = u[i];
		s->ids[4 + i] = g[i];
	}
	/* an invalid id changes nothing and returns the current one */
	s->ids[3] = syscall(SYS_setfsuid, -1);
	s->ids[7] = syscall(SYS_setfsgid, -1);
	s->ngroups = getgroups(64, s->groups);
	get_caps(&s->eff, &s->prm, &s->inh);
	for (int c = 0; c <= last_cap; c++) {
		if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1)
			s->bnd |= BIT(c);
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0) == 1)
			s->amb |= BIT(c);
	}
	s->secbits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
	s->nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	s->dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	int sig = -1;
	prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0);
	s->pdeath = sig;
	s->filters = seccomp_filters();
}

static void compare(const char *who, const struct cstate *was, const struct cstate *now)
{
	static const char *const names[] = { "uid", "euid", "suid", "fsuid",
					     "gid", "egid", "sgid", "fsgid" };

	for (int i = 0; i < 8; i++)
		if (was->ids[i] != now->ids[i])
			tp_fail("%s: %s is %ld, was %ld", who, names[i], now->ids[i], was->ids[i]);
	if (was->ngroups != now->ngroups ||
	    memcmp(was->groups, now->groups, sizeof(gid_t) * (now->ngroups > 0 ? now->ngroups : 0)))
		tp_fail("%s: supplementary groups differ (%d now, %d before)", who, now->ngroups,
			was->ngroups);
#define CMP(f, fmt)                                                                    \
	if (was->f != now->f)                                                          \
		tp_fail("%s: " #f " is " fmt ", was " fmt, who, now->f, was->f)
	CMP(eff, "%#llx");
	CMP(prm, "%#llx");
	CMP(inh, "%#llx");
	CMP(bnd, "%#llx");
	CMP(amb, "%#llx");
	CMP(secbits, "%#lx");
	CMP(nnp, "%ld");
	CMP(dumpable, "%ld");
	CMP(pdeath, "%ld");
	CMP(filters, "%d");
#undef CMP
}

/* A filter: nr fails with err, everything else passes. */
static long deny(int nr, int err, unsigned flags)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | err),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog p = { sizeof(f) / sizeof(f[0]), f };

	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &p);
}

/* The errno getpgid, getppid, getsid fail with (0: they pass). */
static void check_denials(const char *who, int pgid, int ppid, int sid)
{
	static const char *const names[] = { "getpgid", "getppid", "getsid" };
	int want[3] = { pgid, ppid, sid }, got[3];

	errno = 0;
	got[0] = syscall(SYS_getpgid, 0) == -1 ? errno : 0;
	errno = 0;
	got[1] = syscall(SYS_getppid) == -1 ? errno : 0;
	errno = 0;
	got[2] = syscall(SYS_getsid, 0) == -1 ? errno : 0;
	for (int i = 0; i < 3; i++)
		if (got[i] != want[i])
			tp_fail("%s: seccomp: %s gives errno %d, expected %d", who, names[i],
				got[i], want[i]);
}

/* What an unprivileged thread must still be refused. */
static void check_powerless(const char *who, uint64_t prm)
{
	int fd;

	errno = 0;
	if (syscall(SYS_setresuid, 0, 0, 0) != -1 || errno != EPERM)
		tp_fail("%s: setresuid(0) was not refused (errno %d)", who, errno);
	errno = 0;
	fd = open("/etc/shadow", O_WRONLY | O_CLOEXEC);
	if (fd >= 0 || errno != EACCES) {
		tp_fail("%s: open(/etc/shadow, O_WRONLY) gave %d, errno %d", who, fd, errno);
		if (fd >= 0)
			close(fd);
	}
	errno = 0;
	if (kill(1, 0) != -1 || errno != EPERM)
		tp_fail("%s: kill(1, 0) was not refused (errno %d)", who, errno);
	unsigned long long e, p, i;
	get_caps(&e, &p, &i);
	errno = 0;
	if (set_caps(e | BIT(CAP_SYS_ADMIN), p | BIT(CAP_SYS_ADMIN), i) != -1 || errno != EPERM)
		tp_fail("%s: raising CAP_SYS_ADMIN was not refused (errno %d)", who, errno);
	if (p != prm)
		tp_fail("%s: permitted set %#llx, expected %#llx", who, (unsigned long long)p,
			(unsigned long long)prm);
}

static void *second(void *arg)
{
	struct timespec ts = { 0, 5 * 1000 * 1000 };
	uint64_t keep = BIT(CAP_DAC_READ_SEARCH);
	struct cstate now;

	(void)arg;
	/* its own filter, while it may still install one */
	if (deny(SYS_getsid, EPERM, 0))
		tp_die("seccomp (second thread)");
	if (syscall(SYS_setresgid, 2000, 2000, 2000) || syscall(SYS_setresuid, 2000, 2001, 2002))
		tp_die("second thread: set*id");
	/* keep_caps kept the permitted set; the effective one is empty now */
	if (set_caps(keep, keep, 0))
		tp_die("second thread: capset");
	read_state(&thread_at_ready);
	thread_stage = 1;
	while (thread_stage != 2)
		nanosleep(&ts, NULL);
	read_state(&now);
	compare("thread", &thread_at_ready, &now);
	check_denials("thread", EPERM, 0, EPERM);
	check_powerless("thread", keep);
	if (now.ids[1] != 2001 || now.nnp != 0 || now.filters != 2)
		tp_fail("thread: euid %ld, no_new_privs %ld, %d filters (expected 2001, 0, 2)",
			now.ids[1], now.nnp, now.filters);
	thread_stage = 3;
	return NULL;
}

int main(int argc, char **argv)
{
	static const gid_t groups[NGROUPS] = { 100, 1000, 2000 };
	uint64_t nbs = BIT(CAP_NET_BIND_SERVICE), drs = BIT(CAP_DAC_READ_SEARCH);
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	unsigned long long e, p, i;
	struct cstate now;
	struct stat st;
	pthread_t th;
	FILE *f;

	tp_init(argc, argv, 1, "GOFILE");
	f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	if (!f || fscanf(f, "%d", &last_cap) != 1)
		tp_die("cap_last_cap");
	fclose(f);
	if (getuid() != 0)
		tp_die("must start as root");
	if (setgroups(NGROUPS, groups))
		tp_die("setgroups");
	if (deny(SYS_getpgid, EPERM, 0))
		tp_die("seccomp F0");
	get_caps(&e, &p, &i);
	if (set_caps(e, p, nbs | drs))
		tp_die("capset inheritable");
	if (prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0) ||
	    prctl(PR_CAPBSET_DROP, CAP_NET_RAW, 0, 0, 0) ||
	    prctl(PR_CAPBSET_DROP, CAP_SYS_MODULE, 0, 0, 0))
		tp_die("PR_CAPBSET_DROP");
	if (prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS | SECBIT_NOROOT | SECBIT_NOROOT_LOCKED, 0, 0,
		  0))
		tp_die("PR_SET_SECUREBITS");

	if (pthread_create(&th, NULL, second, NULL))
		tp_die("pthread_create");
	while (thread_stage != 1)
		nanosleep(&ts, NULL);

	/* F1, then F3: for the same action the newest filter's errno wins,
	 * so getpgid tells whether the order was kept */
	if (deny(SYS_getppid, EPERM, SECCOMP_FILTER_FLAG_LOG) || deny(SYS_getpgid, EACCES, 0))
		tp_die("seccomp F1, F3");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		tp_die("no_new_privs");
	if (syscall(SYS_setresgid, 1000, 1001, 1002) || syscall(SYS_setfsgid, 1003) < 0 ||
	    syscall(SYS_setresuid, 1000, 1001, 1002))
		tp_die("set*id");
	/* the uid change emptied the effective set: setfsuid needs cap_setuid */
	get_caps(&e, &p, &i);
	if (set_caps(p, p, i) || syscall(SYS_setfsuid, 1003) < 0)
		tp_die("setfsuid");
	if (set_caps(nbs | drs, nbs | drs | BIT(CAP_KILL), nbs | drs))
		tp_die("capset");
	/* the uid change cleared the ambient set */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0))
		tp_die("ambient raise");
	if (prctl(PR_SET_PDEATHSIG, SIGUSR2, 0, 0, 0))
		tp_die("pdeathsig");
	read_state(&main_at_ready);
	/* dumpable belongs to the process: the uid change above reset it */
	thread_at_ready.dumpable = main_at_ready.dumpable;
	if (main_at_ready.ids[3] != 1003 || main_at_ready.ids[7] != 1003 ||
	    main_at_ready.amb != nbs || main_at_ready.filters != 3)
		tp_die("set-up is not what was asked for");
	tp_ready();

	/* access() would use the real uid without capabilities: stat() uses
	 * dac_read_search to reach the GO file */
	while (stat(tp_gofile, &st))
		nanosleep(&ts, NULL);
	if (tp_sabotaged("creds"))
		syscall(SYS_setresuid, -1, 1000, -1);
	if (tp_sabotaged("seccomp"))
		deny(SYS_getsid, EPERM, 0);

	read_state(&now);
	compare("main", &main_at_ready, &now);
	check_denials("main", EACCES, EPERM, 0);
	check_powerless("main", nbs | drs | BIT(CAP_KILL));
	if (now.ids[0] != 1000 || now.ids[1] != 1001 || now.ngroups != NGROUPS ||
	    now.bnd & BIT(CAP_SYS_ADMIN) || now.pdeath != SIGUSR2)
		tp_fail("main: uid %ld euid %ld, %d groups, bounding %#llx, pdeath %ld", now.ids[0],
			now.ids[1], now.ngroups, (unsigned long long)now.bnd, now.pdeath);
	/* an effective capability still works: /etc/shadow is readable */
	int fd = open("/etc/shadow", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		tp_fail("main: cannot read /etc/shadow with cap_dac_read_search: %s",
			strerror(errno));
	else
		close(fd);

	thread_stage = 2;
	while (thread_stage != 3)
		nanosleep(&ts, NULL);
	return tp_finish();
}
