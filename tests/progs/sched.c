/* sched GOFILE
 *
 * Scheduling attributes per thread, and the process's prctl state.
 *
 *   main thread    SCHED_BATCH, nice 5, reset-on-fork, CPU 0, I/O class
 *                  idle, name "sched-main", MCE kill late
 *   second thread  SCHED_RR priority 3 (nice 10 kept for later), the last
 *                  CPU, I/O best effort level 6, name "sched-second", MCE
 *                  kill early
 *   process        personality ADDR_NO_RANDOMIZE | SHORT_INODE, parent
 *                  death signal SIGUSR1, child subreaper, THP disabled
 *
 * After GO each thread reads its own attributes again (sched_getattr,
 * sched_getaffinity, ioprio_get, PR_GET_NAME, PR_MCE_KILL_GET) and the
 * main thread the process's: all must be as at READY.
 *
 * STASIS_SABOTAGE=sched moves the main thread to SCHED_OTHER after GO;
 * =affinity lets it run on every CPU.
 */
#include "testprog.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#define IOPRIO(class, data) (((class) << 13) | (data))
#define PERSONA (ADDR_NO_RANDOMIZE | SHORT_INODE)

struct sched_attr {
	uint32_t size, policy;
	uint64_t flags;
	int32_t nice;
	uint32_t priority;
	uint64_t runtime, deadline, period;
	uint32_t util_min, util_max;
};

struct tstate {
	struct sched_attr a;
	int nice; /* sched_getattr has none for a real-time thread */
	cpu_set_t cpus;
	long ioprio, mce;
	char name[16];
};

static struct tstate second_ready;
static volatile int stage; /* 1 second set up, 2 go, 3 checked */
static int last_cpu;

static void read_thread(struct tstate *s)
{
	memset(s, 0, sizeof(*s));
	if (syscall(SYS_sched_getattr, 0, &s->a, sizeof(s->a), 0))
		tp_die("sched_getattr");
	if (sched_getaffinity(0, sizeof(s->cpus), &s->cpus))
		tp_die("sched_getaffinity");
	s->nice = getpriority(PRIO_PROCESS, gettid());
	s->ioprio = syscall(SYS_ioprio_get, 1, gettid());
	s->mce = prctl(PR_MCE_KILL_GET, 0, 0, 0, 0);
	prctl(PR_GET_NAME, s->name, 0, 0, 0);
}

static void set_thread(const char *name, int policy, int prio, int nice, uint64_t flags, int cpu,
		       long ioprio, int mce)
{
	struct sched_attr a = { .size = sizeof(a), .policy = policy, .flags = flags,
				.nice = nice, .priority = prio };
	cpu_set_t cpus;

	if (setpriority(PRIO_PROCESS, gettid(), nice) || syscall(SYS_sched_setattr, 0, &a, 0))
		tp_die("%s: sched_setattr", name);
	CPU_ZERO(&cpus);
	CPU_SET(cpu, &cpus);
	if (sched_setaffinity(0, sizeof(cpus), &cpus))
		tp_die("%s: sched_setaffinity", name);
	if (syscall(SYS_ioprio_set, 1, gettid(), ioprio))
		tp_die("%s: ioprio_set", name);
	if (prctl(PR_SET_NAME, name, 0, 0, 0) || prctl(PR_MCE_KILL, PR_MCE_KILL_SET, mce, 0, 0))
		tp_die("%s: prctl", name);
}

static void compare(const char *who, const struct tstate *was, const struct tstate *now)
{
	if (was->a.policy != now->a.policy || was->a.priority != now->a.priority ||
	    was->a.nice != now->a.nice || was->a.flags != now->a.flags)
		tp_fail("%s: policy %u priority %u nice %d flags %#llx, was %u %u %d %#llx", who,
			now->a.policy, now->a.priority, now->a.nice,
			(unsigned long long)now->a.flags, was->a.policy, was->a.priority,
			was->a.nice, (unsigned long long)was->a.flags);
	if (!CPU_EQUAL(&was->cpus, &now->cpus))
		tp_fail("%s: CPU affinity changed (%d CPUs, was %d)", who, CPU_COUNT(&now->cpus),
			CPU_COUNT(&was->cpus));
	if (was->nice != now->nice)
		tp_fail("%s: nice %d, was %d", who, now->nice, was->nice);
	if (was->ioprio != now->ioprio)
		tp_fail("%s: I/O priority %#lx, was %#lx", who, now->ioprio, was->ioprio);
	if (was->mce != now->mce)
		tp_fail("%s: MCE kill policy %ld, was %ld", who, now->mce, was->mce);
	if (strcmp(was->name, now->name))
		tp_fail("%s: name \"%s\", was \"%s\"", who, now->name, was->name);
}

static void *second(void *arg)
{
	struct timespec ts = { 0, 5 * 1000 * 1000 };
	struct tstate now;

	(void)arg;
	set_thread("sched-second", SCHED_RR, 3, 10, 0, last_cpu, IOPRIO(2, 6),
		   PR_MCE_KILL_EARLY);
	read_thread(&second_ready);
	stage = 1;
	while (stage != 2)
		nanosleep(&ts, NULL);
	read_thread(&now);
	compare("second thread", &second_ready, &now);
	if (now.a.policy != SCHED_RR || now.nice != 10)
		tp_fail("second thread: policy %u nice %d", now.a.policy, now.nice);
	stage = 3;
	return NULL;
}

static void read_process(long v[5])
{
	int sig = -1, reaper = -1;

	v[0] = personality(0xffffffff);
	prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0);
	v[1] = sig;
	prctl(PR_GET_CHILD_SUBREAPER, &reaper, 0, 0, 0);
	v[2] = reaper;
	v[3] = prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0);
	v[4] = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
}

int main(int argc, char **argv)
{
	static const char *const pnames[] = { "personality", "pdeath signal", "child subreaper",
					      "THP disable", "dumpable" };
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	struct tstate main_ready, now;
	long proc_ready[5], proc_now[5];
	pthread_t th;

	tp_init(argc, argv, 1, "GOFILE");
	last_cpu = sysconf(_SC_NPROCESSORS_ONLN) - 1;
	if (personality(PERSONA) < 0 || prctl(PR_SET_PDEATHSIG, SIGUSR1, 0, 0, 0) ||
	    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) || prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0))
		tp_die("process attributes");
	if (pthread_create(&th, NULL, second, NULL))
		tp_die("pthread_create");
	while (stage != 1)
		nanosleep(&ts, NULL);
	set_thread("sched-main", SCHED_BATCH, 0, 5, 1 /* SCHED_FLAG_RESET_ON_FORK */, 0,
		   IOPRIO(3, 0), PR_MCE_KILL_LATE);
	read_thread(&main_ready);
	read_process(proc_ready);
	if (main_ready.a.policy != SCHED_BATCH || !(main_ready.a.flags & 1) ||
	    proc_ready[0] != PERSONA || proc_ready[3] != 1 || second_ready.a.priority != 3)
		tp_die("set-up is not what was asked for");
	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("sched")) {
		struct sched_attr a = { .size = sizeof(a), .policy = SCHED_OTHER };

		syscall(SYS_sched_setattr, 0, &a, 0);
	}
	if (tp_sabotaged("affinity")) {
		cpu_set_t all;

		CPU_ZERO(&all);
		for (int i = 0; i <= last_cpu; i++)
			CPU_SET(i, &all);
		sched_setaffinity(0, sizeof(all), &all);
	}
	read_thread(&now);
	compare("main thread", &main_ready, &now);
	read_process(proc_now);
	for (int i = 0; i < 5; i++)
		if (proc_now[i] != proc_ready[i])
			tp_fail("%s is %#lx, was %#lx", pnames[i], proc_now[i], proc_ready[i]);
	stage = 2;
	while (stage != 3)
		nanosleep(&ts, NULL);
	return tp_finish();
}
