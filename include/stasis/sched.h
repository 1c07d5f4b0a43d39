/* SPDX-License-Identifier: GPL-2.0 */
/* Scheduling attributes as the system calls take them (glibc has no
 * sched_getattr/sched_setattr here, and linux/sched/types.h clashes with
 * <sched.h>): shared by collect/sched.c and inject/sched.c. */
#ifndef STASIS_SCHED_H
#define STASIS_SCHED_H

#include <stdint.h>

struct stasis_sched_attr {
	uint32_t size;
	uint32_t sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime;
	uint64_t sched_deadline;
	uint64_t sched_period;
	uint32_t sched_util_min;
	uint32_t sched_util_max;
};

#ifndef SCHED_FLAG_RESET_ON_FORK
#define SCHED_FLAG_RESET_ON_FORK 0x01
#define SCHED_FLAG_RECLAIM 0x02
#define SCHED_FLAG_DL_OVERRUN 0x04
#define SCHED_FLAG_KEEP_POLICY 0x08
#define SCHED_FLAG_KEEP_PARAMS 0x10
#define SCHED_FLAG_UTIL_CLAMP_MIN 0x20
#define SCHED_FLAG_UTIL_CLAMP_MAX 0x40
#endif

#define STASIS_IOPRIO_WHO_PROCESS 1
/* Largest CPU mask read or written (bytes): 32768 CPUs. */
#define STASIS_CPUMASK_MAX 4096

#endif
