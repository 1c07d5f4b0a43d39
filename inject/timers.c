// SPDX-License-Identifier: GPL-2.0
/*
 * Timers, armed by the task itself near the end of its restore: interval
 * timers and POSIX timers get the time they had left at dump, counted from
 * now (the time the tree spent checkpointed does not count, as in CRIU),
 * and their intervals; each thread its timer slack.
 *
 * POSIX timers keep their IDs: with PR_TIMER_CREATE_RESTORE_IDS (Linux
 * 6.16+) timer_create takes the ID to use from its timer_t argument;
 * without it the kernel hands out IDs in order, so the timers are created
 * in ID order and the gaps filled with placeholders deleted afterwards.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>

#include "inject.h"
#include "stasis/log.h"
#include "stasis/util.h"

#ifndef PR_TIMER_CREATE_RESTORE_IDS
#define PR_TIMER_CREATE_RESTORE_IDS 77
#define PR_TIMER_CREATE_RESTORE_IDS_OFF 0
#define PR_TIMER_CREATE_RESTORE_IDS_ON 1
#endif

/* Placeholders allowed in front of one timer without the prctl. */
#define MAX_GAP 65536
#define SCRATCH_ID 512

/* A SIGALRM waits in the process's queue. */
static bool sigalrm_pending(const Stasis__TaskCore *tc)
{
	for (size_t i = 0; i < tc->n_shared_pending; i++) {
		int signo;

		if (tc->shared_pending[i].len < sizeof(signo))
			continue;
		memcpy(&signo, tc->shared_pending[i].data, sizeof(signo));
		if (signo == SIGALRM)
			return true;
	}
	return false;
}

static int restore_itimers(struct itask *t)
{
	for (size_t i = 0; i < t->tc->n_itimers; i++) {
		Stasis__Itimer *it = t->tc->itimers[i];
		struct itimerval v = {
			.it_interval = { it->interval_us / 1000000, it->interval_us % 1000000 },
			.it_value = { it->value_us / 1000000, it->value_us % 1000000 },
		};
		unsigned long at;
		long r;

		if (it->which > ITIMER_PROF) {
			pr_err("task %d: unknown interval timer %u", t->pid, it->which);
			return -1;
		}
		/*
		 * A periodic ITIMER_REAL that has fired is re-armed by the kernel
		 * only when its SIGALRM is dequeued; frozen in between, it reads
		 * as 0 time left. setitimer with 0 would disarm it, so it gets
		 * one interval: the pending SIGALRM comes first, then the period
		 * goes on.
		 */
		if (it->which == ITIMER_REAL && !it->value_us && it->interval_us &&
		    sigalrm_pending(t->tc))
			v.it_value = v.it_interval;
		at = scratch_put(t, 0, &v, sizeof(v));
		if (!at)
			return -1;
		r = ISYS(t, SYS_setitimer, it->which, at, 0);
		if (r) {
			pr_err("task %d: cannot restore interval timer %u: %s", t->pid, it->which,
			       strerror(-r));
			return -1;
		}
	}
	return 0;
}

static int timer_cmp(const void *a, const void *b)
{
	const Stasis__PosixTimer *x = *(Stasis__PosixTimer *const *)a;
	const Stasis__PosixTimer *y = *(Stasis__PosixTimer *const *)b;

	return (x->id > y->id) - (x->id < y->id);
}

/* timer_create in the task; the new ID, or -errno. With the restore-IDs
 * prctl on, want is the ID asked for. */
static long create(struct itask *t, const Stasis__PosixTimer *pt, int want)
{
	struct sigevent sev;
	int32_t id = want;
	unsigned long at, idat;
	long r;

	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = pt ? pt->notify : SIGEV_NONE;
	sev.sigev_signo = pt ? pt->signo : 0;
	sev.sigev_value.sival_ptr = pt ? (void *)(uintptr_t)pt->sival : NULL;
	if (pt && pt->has_notify_tid)
		sev._sigev_un._tid = pt->notify_tid;
	at = scratch_put(t, 0, &sev, sizeof(sev));
	idat = scratch_put(t, SCRATCH_ID, &id, sizeof(id));
	if (!at || !idat)
		return -EFAULT;
	r = ISYS(t, SYS_timer_create, pt ? pt->clock : CLOCK_MONOTONIC, at, idat);
	if (r)
		return r;
	if (rmem_read(&t->rt, idat, &id, sizeof(id)))
		return -EFAULT;
	return id;
}

static int delete(struct itask *t, int id)
{
	long r = ISYS(t, SYS_timer_delete, id);

	if (r)
		pr_err("task %d: cannot delete POSIX timer %d: %s", t->pid, id, strerror(-r));
	return r ? -1 : 0;
}

static int arm(struct itask *t, const Stasis__PosixTimer *pt)
{
	struct itimerspec ts = {
		.it_interval = { pt->interval_ns / 1000000000, pt->interval_ns % 1000000000 },
		.it_value = { pt->value_ns / 1000000000, pt->value_ns % 1000000000 },
	};
	unsigned long at;
	long r;

	if (!pt->value_ns)
		return 0;
	at = scratch_put(t, 0, &ts, sizeof(ts));
	if (!at)
		return -1;
	r = ISYS(t, SYS_timer_settime, pt->id, 0, at, 0);
	if (r) {
		pr_err("task %d: cannot arm POSIX timer %d: %s", t->pid, pt->id, strerror(-r));
		return -1;
	}
	return 0;
}

static int restore_posix_timers(struct itask *t)
{
	Stasis__TaskCore *tc = t->tc;
	Stasis__PosixTimer **pts;
	int *fill = NULL, nr_fill = 0, ret = -1;
	bool by_id;
	long r;

	if (!tc->n_posix_timers)
		return 0;
	pts = xmalloc(tc->n_posix_timers * sizeof(*pts));
	memcpy(pts, tc->posix_timers, tc->n_posix_timers * sizeof(*pts));
	qsort(pts, tc->n_posix_timers, sizeof(*pts), timer_cmp);
	by_id = !ISYS(t, SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_ON);
	pr_debug("task %d: %zu POSIX timers, IDs %s", t->pid, tc->n_posix_timers,
		 by_id ? "asked for" : "in creation order");
	for (size_t i = 0; i < tc->n_posix_timers; i++) {
		int want = pts[i]->id;

		if (want < 0 || (i && want == pts[i - 1]->id)) {
			pr_err("task %d: bad POSIX timer ID %d in the checkpoint", t->pid, want);
			goto out;
		}
		for (;;) {
			r = create(t, pts[i], want);
			if (r < 0) {
				pr_err("task %d: cannot create POSIX timer %d: %s", t->pid, want,
				       strerror(-r));
				goto out;
			}
			if (r == want)
				break;
			/* the kernel's next ID is below the one we want */
			if (by_id || r > want || nr_fill >= MAX_GAP) {
				pr_err("task %d: POSIX timer %d came out as %ld", t->pid, want, r);
				delete(t, r);
				goto out;
			}
			fill = xrealloc(fill, (nr_fill + 1) * sizeof(*fill));
			fill[nr_fill++] = r;
		}
	}
	ret = 0;
out:
	if (by_id)
		ISYS(t, SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_OFF);
	for (int i = 0; i < nr_fill; i++)
		if (delete(t, fill[i]))
			ret = -1;
	for (size_t i = 0; !ret && i < tc->n_posix_timers; i++)
		if (arm(t, pts[i]))
			ret = -1;
	free(fill);
	free(pts);
	return ret;
}

int timers_restore(struct itask *t)
{
	if (restore_posix_timers(t) || restore_itimers(t))
		return -1;
	for (size_t i = 0; i < t->nr_threads; i++) {
		Stasis__ThreadCore *th = t->threads[i].th;
		long r;

		/* 0 is not a slack but "back to the default" */
		if (!th->has_timerslack_ns || !th->timerslack_ns)
			continue;
		r = rsys(t->threads[i].rt, SYS_prctl, PR_SET_TIMERSLACK, th->timerslack_ns);
		if (r) {
			pr_err("task %u: cannot restore its timer slack: %s", th->tid,
			       strerror(-r));
			return -1;
		}
	}
	return 0;
}
