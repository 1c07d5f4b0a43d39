// SPDX-License-Identifier: GPL-2.0
/*
 * Scheduling, per thread and all from the outside (the calls take a TID):
 * policy, priority and nice (sched_getattr), CPU affinity, I/O priority.
 */
#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "collect.h"
#include "stasis/log.h"
#include "stasis/sched.h"
#include "stasis/util.h"

int sched_collect_thread(struct ctask *ct, int thread, Stasis__ThreadCore *th)
{
	pid_t tid = ct->threads[thread].tid;
	struct stasis_sched_attr a = { 0 };
	static uint64_t mask[STASIS_CPUMASK_MAX / 8];
	Stasis__SchedAttr *s;
	long n;
	int nice;

	if (syscall(SYS_sched_getattr, tid, &a, sizeof(a), 0)) {
		pr_perror("cannot read the scheduling policy of task %d", tid);
		return -1;
	}
	/* sched_getattr shows no nice for a real-time thread, which still has
	 * one for when it goes back to a fair policy */
	errno = 0;
	nice = getpriority(PRIO_PROCESS, tid);
	if (nice == -1 && errno) {
		pr_perror("cannot read the nice value of task %d", tid);
		return -1;
	}
	s = xmalloc(sizeof(*s));
	stasis__sched_attr__init(s);
	s->policy = a.sched_policy;
	s->has_flags = s->has_nice = s->has_priority = true;
	s->flags = a.sched_flags;
	s->nice = nice;
	s->priority = a.sched_priority;
	s->has_runtime = s->has_deadline = s->has_period = true;
	s->runtime = a.sched_runtime;
	s->deadline = a.sched_deadline;
	s->period = a.sched_period;
	if (a.size >= 56) {
		s->has_util_min = s->has_util_max = true;
		s->util_min = a.sched_util_min;
		s->util_max = a.sched_util_max;
	}
	th->sched = s;

	/* the raw call returns the size of the kernel's mask */
	n = syscall(SYS_sched_getaffinity, tid, sizeof(mask), mask);
	if (n < 0) {
		pr_perror("cannot read the CPU affinity of task %d", tid);
		return -1;
	}
	th->n_cpu_affinity = (n + 7) / 8;
	th->cpu_affinity = xzalloc(th->n_cpu_affinity * sizeof(uint64_t));
	memcpy(th->cpu_affinity, mask, n);

	n = syscall(SYS_ioprio_get, STASIS_IOPRIO_WHO_PROCESS, tid);
	if (n < 0) {
		pr_perror("cannot read the I/O priority of task %d", tid);
		return -1;
	}
	th->has_ioprio = true;
	th->ioprio = n;
	pr_debug("task %d: policy %u nice %d priority %u flags %#llx ioprio %#lx", tid, s->policy,
		 s->nice, s->priority, (unsigned long long)s->flags, n);
	return 0;
}
