// SPDX-License-Identifier: GPL-2.0
/*
 * Scheduling, per thread and from the outside (the calls take a TID), once
 * the restore's own remote calls are done, so that a SCHED_IDLE or
 * single-CPU task does not slow them down: nice, policy and priority, CPU
 * affinity, I/O priority.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "inject.h"
#include "stasis/log.h"
#include "stasis/sched.h"
#include "stasis/util.h"

#define UCLAMP_MAX 1024

static int restore_policy(pid_t tid, const Stasis__SchedAttr *s)
{
	struct stasis_sched_attr a = {
		.size = sizeof(a),
		.sched_policy = s->policy,
		.sched_flags = s->flags & (SCHED_FLAG_RESET_ON_FORK | SCHED_FLAG_RECLAIM |
					   SCHED_FLAG_DL_OVERRUN),
		.sched_nice = s->nice,
		.sched_priority = s->priority,
	};

	/* A fair thread shows its time slice as runtime: giving it back
	 * would make the default slice a custom one (Linux 6.12+). */
	if (s->policy == SCHED_DEADLINE) {
		a.sched_runtime = s->runtime;
		a.sched_deadline = s->deadline;
		a.sched_period = s->period;
	}

	/* sched_setattr sets nice for the fair policies only: a real-time
	 * thread keeps its nice for when it goes back to them */
	if (s->has_nice && setpriority(PRIO_PROCESS, tid, s->nice)) {
		pr_perror("cannot restore the nice value of task %d", tid);
		return -1;
	}
	/* both 0: a kernel without utilization clamping */
	if (s->has_util_min && s->has_util_max && s->util_max &&
	    (s->util_min || s->util_max != UCLAMP_MAX)) {
		a.sched_flags |= SCHED_FLAG_UTIL_CLAMP_MIN | SCHED_FLAG_UTIL_CLAMP_MAX;
		a.sched_util_min = s->util_min;
		a.sched_util_max = s->util_max;
	}
	if (syscall(SYS_sched_setattr, tid, &a, 0)) {
		pr_perror("cannot restore the scheduling policy %u of task %d", s->policy, tid);
		return -1;
	}
	return 0;
}

static int restore_affinity(pid_t tid, const Stasis__ThreadCore *th)
{
	static uint64_t mask[STASIS_CPUMASK_MAX / 8];
	size_t n = th->n_cpu_affinity;

	if (!n)
		return 0;
	if (n > ARRAY_SIZE(mask)) {
		pr_err("task %d: CPU affinity mask too large in the checkpoint", tid);
		return -1;
	}
	memset(mask, 0, sizeof(mask));
	memcpy(mask, th->cpu_affinity, n * sizeof(uint64_t));
	if (syscall(SYS_sched_setaffinity, tid, n * sizeof(uint64_t), mask)) {
		pr_perror("cannot restore the CPU affinity of task %d", tid);
		return -1;
	}
	return 0;
}

int sched_restore(struct itask *t)
{
	for (size_t i = 0; i < t->nr_threads; i++) {
		Stasis__ThreadCore *th = t->threads[i].th;
		pid_t tid = t->threads[i].rt->tid;

		if (th->sched && restore_policy(tid, th->sched))
			return -1;
		if (restore_affinity(tid, th))
			return -1;
		if (th->has_ioprio &&
		    syscall(SYS_ioprio_set, STASIS_IOPRIO_WHO_PROCESS, tid, th->ioprio)) {
			pr_perror("cannot restore the I/O priority %#x of task %d", th->ioprio,
				  tid);
			return -1;
		}
	}
	return 0;
}
