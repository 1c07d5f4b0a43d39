// SPDX-License-Identifier: GPL-2.0
/*
 * IPC namespaces (collect/ipcns.c, docs/ipc.md). ipcns_fill runs in the
 * holder of a new, empty IPC namespace (ns.c), as root: each SysV object
 * is made again with its id (kernel.{shm,sem,msg}_next_id before each
 * creation, as criu does), its key, by its creator's uid and gid (cuid and
 * cgid are the creator's), then given its owner and mode (IPC_SET) and its
 * contents: a segment's through an attach of the holder's, a set's values
 * with SETALL, a queue's messages sent in order. The limits stay those of
 * a new namespace, raised where an object needs it, until every object is
 * made; then the recorded sysctls are written.
 *
 * Two things wait until every task has its mappings (ipcns_finish): a
 * segment removed while attached (SHM_DEST) is made as an ordinary one and
 * marked removed once the tasks have attached it again, and
 * kernel.shm_rmid_forced, which would otherwise destroy the segments
 * the holder made as it exits.
 *
 * A task's SysV mapping is attached again in the task (ipcns_map), which
 * is already in its IPC namespace (ns_join).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "inject.h"
#include "stasis/log.h"
#include "stasis/proc.h"
#include "stasis/util.h"

/* The sysctls a checkpoint may set, relative to /proc/sys (collect/ipcns.c). */
static const char *const sysctls[] = {
    "kernel/shmmax",
    "kernel/shmall",
    "kernel/shmmni",
    "kernel/shm_rmid_forced",
    "kernel/msgmax",
    "kernel/msgmni",
    "kernel/msgmnb",
    "kernel/sem",
    "kernel/auto_msgmni",
    "kernel/shm_next_id",
    "kernel/msg_next_id",
    "kernel/sem_next_id",
    "fs/mqueue/queues_max",
    "fs/mqueue/msg_max",
    "fs/mqueue/msgsize_max",
    "fs/mqueue/msg_default",
    "fs/mqueue/msgsize_default",
};

#define MAX_MSG (16u << 20) /* a message larger than this is not a real one */

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

static int write_sysctl(uint32_t nsid, const char *name, const char *value)
{
	char path[128];
	size_t len = strlen(value);
	int fd;

	snprintf(path, sizeof(path), "/proc/sys/%s", name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, value, len) != (ssize_t)len) {
		pr_perror("IPC namespace %u: cannot write \"%s\" to %s", nsid, value, path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int write_num(uint32_t nsid, const char *name, long long v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", v);
	return write_sysctl(nsid, name, buf);
}

static long long read_num(const char *name)
{
	char path[128], buf[64];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/sys/%s", name);
	f = fopen(path, "re");
	if (f) {
		if (fgets(buf, sizeof(buf), f))
			v = strtoll(buf, NULL, 10);
		fclose(f);
	}
	return v;
}

static const char *sysctl_value(const Stasis__NsEntry *e, const char *name)
{
	for (size_t i = 0; i < e->n_ipc_sysctls; i++)
		if (!strcmp(e->ipc_sysctls[i]->name, name))
			return e->ipc_sysctls[i]->value;
	return NULL;
}

static bool known_sysctl(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(sysctls); i++)
		if (!strcmp(sysctls[i], name))
			return true;
	return false;
}

/* The creator's euid and egid around a creation (cuid, cgid), and back. */
static int as_creator(const Stasis__IpcPerm *p)
{
	if (setresgid(-1, p->cgid, -1) || setresuid(-1, p->cuid, -1)) {
		pr_perror("cannot take the creator's ids (%u:%u) of IPC object %d", p->cuid,
			  p->cgid, p->id);
		setresuid(-1, 0, -1);
		setresgid(-1, 0, -1);
		return -1;
	}
	return 0;
}

static int as_root(void)
{
	if (setresuid(-1, 0, -1) || setresgid(-1, 0, -1)) {
		pr_perror("cannot come back to root after making an IPC object");
		return -1;
	}
	return 0;
}

/* kind "shm", "sem" or "msg": the next object gets id */
static int next_id(uint32_t nsid, const char *kind, int id)
{
	char name[32];

	snprintf(name, sizeof(name), "kernel/%s_next_id", kind);
	return write_num(nsid, name, id);
}

static int check_id(uint32_t nsid, const char *what, int got, int want)
{
	if (got < 0) {
		pr_perror("IPC namespace %u: cannot make %s %d", nsid, what, want);
		return -1;
	}
	if (got != want) {
		pr_err("IPC namespace %u: %s %d came back as %d", nsid, what, want, got);
		return -1;
	}
	return 0;
}

static int shm_fill(uint32_t nsid, const Stasis__IpcShm *s)
{
	unsigned n = records_count("ipc-shm");
	char *p = shmat(s->perm->id, NULL, 0);
	int ret = 0;

	if (p == (void *)-1) {
		pr_perror("IPC namespace %u: cannot attach segment %d to fill it", nsid,
			  s->perm->id);
		return -1;
	}
	for (unsigned i = 0; !ret && i < n; i++) {
		Stasis__IpcShmChunk *c =
		    records_get("ipc-shm", i, &stasis__ipc_shm_chunk__descriptor);

		if (!c) {
			ret = -1;
			break;
		}
		if (c->ns == nsid && c->shmid == s->perm->id) {
			if (c->offset > s->size || c->data.len > s->size - c->offset) {
				pr_err("ipc-shm: a piece of segment %d lies beyond its size",
				       s->perm->id);
				ret = -1;
			} else {
				memcpy(p + c->offset, c->data.data, c->data.len);
			}
		}
		protobuf_c_message_free_unpacked(&c->base, NULL);
	}
	shmdt(p);
	return ret;
}

static int make_shm(uint32_t nsid, const Stasis__IpcShm *s)
{
	const Stasis__IpcPerm *p = s->perm;
	struct shmid_ds ds;
	int id;

	if (!p || p->id < 0) {
		pr_err("IPC namespace %u: a segment of the checkpoint is malformed", nsid);
		return -1;
	}
	if (next_id(nsid, "shm", p->id) || as_creator(p))
		return -1;
	id = shmget(p->key, s->size, IPC_CREAT | IPC_EXCL | (p->mode & 0777));
	if (as_root() || check_id(nsid, "segment", id, p->id))
		return -1;
	if (shmctl(id, IPC_STAT, &ds)) {
		pr_perror("IPC namespace %u: cannot read segment %d", nsid, id);
		return -1;
	}
	ds.shm_perm.uid = p->uid;
	ds.shm_perm.gid = p->gid;
	ds.shm_perm.mode = p->mode & 0777;
	if (shmctl(id, IPC_SET, &ds)) {
		pr_perror("IPC namespace %u: cannot set the owner and mode of segment %d", nsid,
			  id);
		return -1;
	}
	if (shm_fill(nsid, s))
		return -1;
	if ((p->mode & SHM_LOCKED) && shmctl(id, SHM_LOCK, NULL)) {
		pr_perror("IPC namespace %u: cannot lock segment %d (SHM_LOCK)", nsid, id);
		return -1;
	}
	pr_debug("IPC namespace %u: segment %d made (key %#x, %llu bytes)", nsid, id, p->key,
		 (unsigned long long)s->size);
	return 0;
}

static int make_sem(uint32_t nsid, const Stasis__IpcSem *s)
{
	const Stasis__IpcPerm *p = s->perm;
	union semun arg;
	struct semid_ds ds;
	unsigned short *vals;
	int id, ret;

	if (!p || p->id < 0 || !s->n_values || s->n_values > 65536) {
		pr_err("IPC namespace %u: a semaphore set of the checkpoint is malformed", nsid);
		return -1;
	}
	if (next_id(nsid, "sem", p->id) || as_creator(p))
		return -1;
	id = semget(p->key, s->n_values, IPC_CREAT | IPC_EXCL | (p->mode & 0777));
	if (as_root() || check_id(nsid, "semaphore set", id, p->id))
		return -1;
	arg.buf = &ds;
	if (semctl(id, 0, IPC_STAT, arg)) {
		pr_perror("IPC namespace %u: cannot read semaphore set %d", nsid, id);
		return -1;
	}
	ds.sem_perm.uid = p->uid;
	ds.sem_perm.gid = p->gid;
	ds.sem_perm.mode = p->mode & 0777;
	if (semctl(id, 0, IPC_SET, arg)) {
		pr_perror("IPC namespace %u: cannot set the owner and mode of semaphore set %d",
			  nsid, id);
		return -1;
	}
	vals = xmalloc(s->n_values * sizeof(*vals));
	for (size_t i = 0; i < s->n_values; i++)
		vals[i] = s->values[i] > 65535 ? 65535 : s->values[i];
	arg.array = vals;
	ret = semctl(id, 0, SETALL, arg);
	free(vals);
	if (ret) {
		pr_perror("IPC namespace %u: cannot set the values of semaphore set %d", nsid, id);
		return -1;
	}
	pr_debug("IPC namespace %u: semaphore set %d made (key %#x, %zu semaphores)", nsid, id,
		 p->key, s->n_values);
	return 0;
}

static int msg_fill(uint32_t nsid, const Stasis__IpcMsgQueue *q)
{
	unsigned n = records_count("ipc-msg"), sent = 0;
	int ret = 0;

	for (unsigned i = 0; !ret && i < n; i++) {
		Stasis__IpcMsg *m = records_get("ipc-msg", i, &stasis__ipc_msg__descriptor);
		struct {
			long mtype;
			char text[];
		} * buf;

		if (!m)
			return -1;
		if (m->ns == nsid && m->msqid == q->perm->id) {
			if (m->mtype <= 0 || m->text.len > MAX_MSG) {
				pr_err("ipc-msg: a message of queue %d is malformed", q->perm->id);
				ret = -1;
			} else {
				buf = xmalloc(sizeof(*buf) + m->text.len + 1);
				buf->mtype = m->mtype;
				memcpy(buf->text, m->text.data, m->text.len);
				if (msgsnd(q->perm->id, buf, m->text.len, IPC_NOWAIT)) {
					pr_perror("IPC namespace %u: cannot queue message %u of "
						  "queue %d (%zu bytes)",
						  nsid, sent, q->perm->id, m->text.len);
					ret = -1;
				}
				sent++;
				free(buf);
			}
		}
		protobuf_c_message_free_unpacked(&m->base, NULL);
	}
	if (!ret && sent != q->qnum) {
		pr_err("IPC namespace %u: queue %d had %u messages, the checkpoint holds %u", nsid,
		       q->perm->id, q->qnum, sent);
		ret = -1;
	}
	return ret;
}

static int make_msg(uint32_t nsid, const Stasis__IpcMsgQueue *q)
{
	const Stasis__IpcPerm *p = q->perm;
	struct msqid_ds ds;
	int id;

	if (!p || p->id < 0 || q->qbytes > INT32_MAX) {
		pr_err("IPC namespace %u: a message queue of the checkpoint is malformed", nsid);
		return -1;
	}
	/* a new queue takes kernel.msgmnb as its size: raising it with
	 * IPC_SET would need CAP_SYS_RESOURCE */
	if (write_num(nsid, "kernel/msgmnb", q->qbytes) || next_id(nsid, "msg", p->id) ||
	    as_creator(p))
		return -1;
	id = msgget(p->key, IPC_CREAT | IPC_EXCL | (p->mode & 0777));
	if (as_root() || check_id(nsid, "message queue", id, p->id))
		return -1;
	if (msgctl(id, IPC_STAT, &ds)) {
		pr_perror("IPC namespace %u: cannot read message queue %d", nsid, id);
		return -1;
	}
	ds.msg_perm.uid = p->uid;
	ds.msg_perm.gid = p->gid;
	ds.msg_perm.mode = p->mode & 0777;
	if (msgctl(id, IPC_SET, &ds)) {
		pr_perror("IPC namespace %u: cannot set the owner and mode of message queue %d",
			  nsid, id);
		return -1;
	}
	if (msg_fill(nsid, q))
		return -1;
	pr_debug("IPC namespace %u: message queue %d made (key %#x, %u messages)", nsid, id, p->key,
		 q->qnum);
	return 0;
}

/* The largest message of namespace nsid's queues. */
static size_t largest_msg(uint32_t nsid)
{
	unsigned n = records_count("ipc-msg");
	size_t max = 0;

	for (unsigned i = 0; i < n; i++) {
		Stasis__IpcMsg *m = records_get("ipc-msg", i, &stasis__ipc_msg__descriptor);

		if (!m)
			break;
		if (m->ns == nsid && m->text.len > max)
			max = m->text.len;
		protobuf_c_message_free_unpacked(&m->base, NULL);
	}
	return max;
}

int ipcns_fill(const Stasis__NsEntry *e)
{
	size_t big = largest_msg(e->id);

	for (size_t i = 0; i < e->n_ipc_sysctls; i++)
		if (!known_sysctl(e->ipc_sysctls[i]->name) || !e->ipc_sysctls[i]->value ||
		    strlen(e->ipc_sysctls[i]->value) > 200) {
			pr_err(
			    "IPC namespace %u: the checkpoint sets sysctl %s, which is not one of "
			    "an IPC namespace",
			    e->id, e->ipc_sysctls[i]->name);
			return -1;
		}
	/* room for every object: as many as the kernel allows, messages as
	 * large as the largest queued */
	if (write_num(e->id, "kernel/shmmni", 32768) ||
	    (big > (size_t)read_num("kernel/msgmax") && write_num(e->id, "kernel/msgmax", big)))
		return -1;
	for (size_t i = 0; i < e->n_ipc_shms; i++)
		if (make_shm(e->id, e->ipc_shms[i]))
			return -1;
	for (size_t i = 0; i < e->n_ipc_sems; i++)
		if (make_sem(e->id, e->ipc_sems[i]))
			return -1;
	for (size_t i = 0; i < e->n_ipc_msgqs; i++)
		if (make_msg(e->id, e->ipc_msgqs[i]))
			return -1;
	/* the recorded limits, last; shm_rmid_forced once the tasks have
	 * attached their segments (ipcns_finish); auto_msgmni is read-only
	 * on newer kernels */
	for (size_t i = 0; i < e->n_ipc_sysctls; i++) {
		const Stasis__IpcSysctl *s = e->ipc_sysctls[i];

		if (!strcmp(s->name, "kernel/shm_rmid_forced"))
			continue;
		if (!strcmp(s->name, "kernel/auto_msgmni") &&
		    access("/proc/sys/kernel/auto_msgmni", W_OK))
			continue;
		/* -1: unset, which a write cannot say; the creations unset it */
		if (strstr(s->name, "_next_id") && !strcmp(s->value, "-1"))
			continue;
		if (write_sysctl(e->id, s->name, s->value))
			return -1;
	}
	pr_info("IPC namespace %u: %zu segments, %zu semaphore sets, %zu message queues made",
		e->id, e->n_ipc_shms, e->n_ipc_sems, e->n_ipc_msgqs);
	return 0;
}

/* ---- once every task has its mappings ---- */

static int finish_one(const Stasis__NsEntry *e)
{
	const char *forced = sysctl_value(e, "kernel/shm_rmid_forced");
	bool removed = false;
	int ret = 0;

	for (size_t i = 0; i < e->n_ipc_shms; i++)
		removed |= (e->ipc_shms[i]->perm->mode & SHM_DEST) != 0;
	if (ns_joined(STASIS__NS_KIND__NS_IPC, e->id) ||
	    (!removed && (!forced || !strcmp(forced, "0"))))
		return 0;
	if (ns_enter(STASIS__NS_KIND__NS_IPC, e->id))
		return -1;
	for (size_t i = 0; !ret && i < e->n_ipc_shms; i++) {
		const Stasis__IpcPerm *p = e->ipc_shms[i]->perm;

		if ((p->mode & SHM_DEST) && shmctl(p->id, IPC_RMID, NULL)) {
			pr_perror("IPC namespace %u: cannot mark segment %d removed", e->id, p->id);
			ret = -1;
		}
	}
	if (!ret && forced && strcmp(forced, "0"))
		ret = write_sysctl(e->id, "kernel/shm_rmid_forced", forced);
	ns_leave(STASIS__NS_KIND__NS_IPC);
	return ret;
}

int ipcns_finish(void)
{
	unsigned n = records_count("ns");

	for (unsigned i = 0; i < n; i++) {
		Stasis__NsEntry *e = records_get("ns", i, &stasis__ns_entry__descriptor);
		int ret;

		if (!e)
			return -1;
		ret = e->kind == STASIS__NS_KIND__NS_IPC ? finish_one(e) : 0;
		protobuf_c_message_free_unpacked(&e->base, NULL);
		if (ret)
			return -1;
	}
	return 0;
}

/* ---- a task's SysV mappings ---- */

int ipcns_map(struct itask *t, const Stasis__Vma *v)
{
	int flags = 0, prot = 0;
	long r;

	/* never a segment of our own namespace */
	if (!t->pe->ipc_ns) {
		pr_err("task %d: a SysV mapping at %#llx, and no IPC namespace of the checkpoint",
		       t->pid, (unsigned long long)v->start);
		return -1;
	}
	if (v->shmid > INT32_MAX) {
		pr_err("task %d: invalid SysV mapping at %#llx in the checkpoint", t->pid,
		       (unsigned long long)v->start);
		return -1;
	}
	if (!v->pgoff) {
		/* the whole attach, pieces of it split by mprotect included */
		uint64_t end = v->end;

		prot = v->prot;
		/* vmas are sorted: the pieces come after the first */
		for (size_t i = 0; i < t->mm->n_vmas; i++) {
			const Stasis__Vma *w = t->mm->vmas[i];

			if (w->kind == STASIS__VMA_KIND__SYSV_SHM && w->shmid == v->shmid &&
			    w->start == end && w->pgoff == end - v->start) {
				prot |= w->prot;
				end = w->end;
			}
		}
		if (!(v->madv & VMF_MAYWRITE) && !(prot & PROT_WRITE))
			flags |= SHM_RDONLY;
		if (prot & PROT_EXEC)
			flags |= SHM_EXEC;
		r = ISYS(t, SYS_shmat, v->shmid, v->start, flags);
		if ((unsigned long)r != v->start) {
			pr_err("task %d: cannot attach SysV segment %llu at %#llx: %s", t->pid,
			       (unsigned long long)v->shmid, (unsigned long long)v->start,
			       r < 0 && r > -4096 ? strerror(-r) : "placed elsewhere");
			return -1;
		}
	}
	/* a later piece is part of the attach made by the first */
	r = ISYS(t, SYS_mprotect, v->start, v->end - v->start, v->prot);
	if (r) {
		pr_err("task %d: cannot protect the SysV mapping at %#llx: %s", t->pid,
		       (unsigned long long)v->start, strerror(-r));
		return -1;
	}
	return 0;
}
