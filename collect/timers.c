// SPDX-License-Identifier: GPL-2.0
/*
 * Timers: interval timers and POSIX timers (process-wide, read from inside
 * with getitimer and timer_gettime: there is no outside view of the time
 * left), which ones exist and how they notify from /proc/PID/timers, and
 * each thread's timer slack.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>

#include "collect.h"
#include "stasis/log.h"
#include "stasis/util.h"

#define MAX_TIMERS (1 << 20)

static int collect_itimers(struct ctask *ct, Stasis__TaskCore *tc)
{
	static const int which[] = { ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF };

	tc->itimers = xmalloc(ARRAY_SIZE(which) * sizeof(*tc->itimers));
	for (size_t i = 0; i < ARRAY_SIZE(which); i++) {
		struct itimerval v;
		Stasis__Itimer *it;
		long r = parasite_call(ct, 0, SYS_getitimer, which[i], ct->scratch, 0, 0);

		if (r) {
			pr_err("task %d: cannot read interval timer %d: %s", ct->pid, which[i],
			       strerror(-r));
			return -1;
		}
		if (rmem_read(&ct->threads[0], ct->scratch, &v, sizeof(v)))
			return -1;
		if (!v.it_value.tv_sec && !v.it_value.tv_usec && !v.it_interval.tv_sec &&
		    !v.it_interval.tv_usec)
			continue;
		it = xmalloc(sizeof(*it));
		stasis__itimer__init(it);
		it->which = which[i];
		it->interval_us = v.it_interval.tv_sec * 1000000ull + v.it_interval.tv_usec;
		it->value_us = v.it_value.tv_sec * 1000000ull + v.it_value.tv_usec;
		tc->itimers[tc->n_itimers++] = it;
	}
	return 0;
}

/* "signal" "none" "thread" in /proc/PID/timers: SIGEV_* values */
static int notify_value(const char *s)
{
	if (!strcmp(s, "signal"))
		return SIGEV_SIGNAL;
	if (!strcmp(s, "none"))
		return SIGEV_NONE;
	if (!strcmp(s, "thread"))
		return SIGEV_THREAD;
	return -1;
}

/* One timer of /proc/PID/timers (4 lines), completed from inside. */
static int collect_one(struct ctask *ct, FILE *f, int id, Stasis__PosixTimer *pt)
{
	char line[256], how[16], who[8];
	unsigned long long sival;
	struct itimerspec ts;
	int sig, who_id, clock, notify;
	long r;

	if (!fgets(line, sizeof(line), f) || sscanf(line, "signal: %d/%llx", &sig, &sival) != 2 ||
	    !fgets(line, sizeof(line), f) ||
	    sscanf(line, "notify: %15[a-z]/%7[a-z].%d", how, who, &who_id) != 3 ||
	    !fgets(line, sizeof(line), f) || sscanf(line, "ClockID: %d", &clock) != 1 ||
	    (notify = notify_value(how)) < 0) {
		pr_err("task %d: cannot parse POSIX timer %d in /proc/%d/timers", ct->pid, id,
		       ct->pid);
		return -1;
	}
	pt->id = id;
	pt->clock = clock;
	pt->signo = sig;
	pt->sival = sival;
	pt->notify = notify;
	if (!strcmp(who, "tid")) {
		pt->notify |= SIGEV_THREAD_ID;
		pt->has_notify_tid = true;
		pt->notify_tid = who_id;
	}
	r = parasite_call(ct, 0, SYS_timer_gettime, id, ct->scratch, 0, 0);
	if (r) {
		pr_err("task %d: cannot read POSIX timer %d: %s", ct->pid, id, strerror(-r));
		return -1;
	}
	if (rmem_read(&ct->threads[0], ct->scratch, &ts, sizeof(ts)))
		return -1;
	pt->interval_ns = ts.it_interval.tv_sec * 1000000000ull + ts.it_interval.tv_nsec;
	pt->value_ns = ts.it_value.tv_sec * 1000000000ull + ts.it_value.tv_nsec;
	r = parasite_call(ct, 0, SYS_timer_getoverrun, id, 0, 0, 0);
	if (r >= 0) {
		pt->has_overrun = true;
		pt->overrun = r;
	}
	pr_debug("task %d: POSIX timer %d clock %d notify %d signal %d value %llu interval %llu",
		 ct->pid, id, clock, pt->notify, sig, (unsigned long long)pt->value_ns,
		 (unsigned long long)pt->interval_ns);
	return 0;
}

static int collect_posix_timers(struct ctask *ct, Stasis__TaskCore *tc)
{
	char path[64], line[256];
	int ret = 0, id;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/timers", ct->pid);
	f = fopen(path, "re");
	if (!f) {
		pr_perror("cannot open %s", path);
		return -1;
	}
	while (!ret && fgets(line, sizeof(line), f)) {
		Stasis__PosixTimer *pt;

		if (sscanf(line, "ID: %d", &id) != 1) {
			pr_err("%s: unexpected line %s", path, line);
			ret = -1;
			break;
		}
		if (tc->n_posix_timers >= MAX_TIMERS) {
			pr_err("task %d: too many POSIX timers", ct->pid);
			ret = -1;
			break;
		}
		pt = xmalloc(sizeof(*pt));
		stasis__posix_timer__init(pt);
		tc->posix_timers = xrealloc(tc->posix_timers,
					    (tc->n_posix_timers + 1) * sizeof(*tc->posix_timers));
		tc->posix_timers[tc->n_posix_timers++] = pt;
		ret = collect_one(ct, f, id, pt);
	}
	fclose(f);
	return ret;
}

int timers_collect(struct ctask *ct, Stasis__TaskCore *tc)
{
	return collect_itimers(ct, tc) || collect_posix_timers(ct, tc) ? -1 : 0;
}

int timers_collect_thread(struct ctask *ct, int thread, Stasis__ThreadCore *th)
{
	long r = parasite_call(ct, thread, SYS_prctl, PR_GET_TIMERSLACK, 0, 0, 0);

	if (r < 0) {
		pr_err("task %d: cannot read its timer slack: %s", th->tid, strerror(-r));
		return -1;
	}
	th->has_timerslack_ns = true;
	th->timerslack_ns = r;
	return 0;
}
