// SPDX-License-Identifier: GPL-2.0
/*
 * IPC namespaces (docs/ipc.md). Read from inside the namespace, by this
 * thread entering it (ns_enter): its sysctls, and every SysV object in
 * it: shared memory segments with their contents (image ipc-shm),
 * semaphore sets with their values, message queues with their messages
 * (image ipc-msg, copied with msgrcv(MSG_COPY), which leaves them queued).
 * The tree is frozen, but a segment's attach and detach here count as
 * one: its nattch stays, its atime, dtime and lpid do not.
 *
 * The SysV mappings of the tasks (mm.c) are noted by ipcns_note_attach and
 * checked here against the segments of their task's namespace. POSIX
 * message queues are not carried: a namespace that has any is refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sched.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "collect.h"
#include "stasis/log.h"
#include "stasis/util.h"

#ifndef MSG_COPY
#define MSG_COPY 040000
#endif

#define CHUNK (1u << 20)

/* The sysctls of an IPC namespace, relative to /proc/sys; absent ones are
 * left out (auto_msgmni is gone from newer kernels). */
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

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
	struct seminfo *__buf;
};

/* A SysV mapping of a task of the tree (mm.c). */
struct attach {
	pid_t pid;
	uint64_t ns_ino; /* its task's IPC namespace */
	unsigned long start;
	int shmid;
	uint32_t key;
	uint64_t len; /* of the whole attach */
};

static struct attach *attaches;
static size_t nr_attaches;

int ipcns_note_attach(pid_t pid, unsigned long start, int shmid, uint32_t key, uint64_t len)
{
	char path[64], own[64];
	struct stat st, ost;

	snprintf(path, sizeof(path), "/proc/%d/ns/ipc", pid);
	snprintf(own, sizeof(own), "/proc/self/ns/ipc");
	if (stat(path, &st) || stat(own, &ost)) {
		pr_perror("task %d: cannot read its IPC namespace", pid);
		return -1;
	}
	if (st.st_ino == ost.st_ino && st.st_dev == ost.st_dev) {
		pr_err(
		    "task %d: SysV shared memory segment %d is attached at %#lx, and SysV IPC is "
		    "carried only in an IPC namespace of the tree's own (unshare --ipc), as in "
		    "criu",
		    pid, shmid, start);
		return -1;
	}
	attaches = xrealloc(attaches, (nr_attaches + 1) * sizeof(*attaches));
	attaches[nr_attaches++] = (struct attach){pid, st.st_ino, start, shmid, key, len};
	return 0;
}

static char *read_sysctl(const char *name)
{
	char path[128], buf[256];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/sys/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return xstrdup(buf);
}

static Stasis__IpcPerm *perm_of(const struct ipc_perm *p, int id)
{
	Stasis__IpcPerm *ip = xmalloc(sizeof(*ip));

	stasis__ipc_perm__init(ip);
	ip->key = p->__key;
	ip->id = id;
	ip->uid = p->uid;
	ip->gid = p->gid;
	ip->cuid = p->cuid;
	ip->cgid = p->cgid;
	ip->mode = p->mode;
	return ip;
}

static bool all_zero(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i += sizeof(long))
		if (*(const long *)(p + i))
			return false;
	return true;
}

/*
 * The contents of a segment, zero pages left out. Without swapped-out
 * pages in the namespace (SHM_INFO), a page mincore says is not resident
 * is a hole and is not read (reading it would allocate it).
 */
static int shm_contents(uint32_t nsid, int shmid, uint64_t size, bool exact_residency,
			struct img_writer *w)
{
	uint64_t len = (size + PAGE_SIZE - 1) / PAGE_SIZE * PAGE_SIZE;
	unsigned char *vec = NULL;
	char *p = shmat(shmid, NULL, SHM_RDONLY);
	int ret = -1;

	if (p == (void *)-1) {
		pr_perror("IPC namespace %u: cannot attach segment %d to read it", nsid, shmid);
		return -1;
	}
	if (exact_residency) {
		vec = xmalloc(len / PAGE_SIZE);
		if (mincore(p, len, vec)) {
			free(vec);
			vec = NULL;
		}
	}
	for (uint64_t off = 0; off < size;) {
		Stasis__IpcShmChunk c = STASIS__IPC_SHM_CHUNK__INIT;
		uint64_t end = off;

		/* a run of resident, non-zero pages, at most CHUNK */
		while (end < size && end - off < CHUNK) {
			uint64_t n = size - end < PAGE_SIZE ? size - end : PAGE_SIZE;

			/* the attach is of whole pages, zeros past the end */
			if ((vec && !(vec[end / PAGE_SIZE] & 1)) || all_zero(p + end, PAGE_SIZE))
				break;
			end += n;
		}
		if (end == off) {
			off += size - off < PAGE_SIZE ? size - off : PAGE_SIZE;
			continue;
		}
		c.ns = nsid;
		c.shmid = shmid;
		c.offset = off;
		c.data.len = end - off;
		c.data.data = (uint8_t *)p + off;
		if (imgw_record(w, "ipc-shm", &c.base))
			goto out;
		off = end;
	}
	ret = 0;
out:
	free(vec);
	shmdt(p);
	return ret;
}

static int collect_shm(uint32_t nsid, Stasis__NsEntry *e, bool rmid_forced, struct img_writer *w)
{
	struct shm_info info;
	int max = shmctl(0, SHM_INFO, (struct shmid_ds *)&info);

	if (max < 0) {
		pr_perror("IPC namespace %u: cannot list its shared memory", nsid);
		return -1;
	}
	for (int idx = 0; idx <= max; idx++) {
		struct shmid_ds ds;
		Stasis__IpcShm *s;
		int id = shmctl(idx, SHM_STAT, &ds);

		if (id < 0)
			continue; /* a free slot */
		if (rmid_forced && !ds.shm_nattch) {
			pr_err(
			    "IPC namespace %u: segment %d is attached by no task and "
			    "kernel.shm_rmid_forced is 1: its restore would destroy it (the task "
			    "that made it is not its creator then)",
			    nsid, id);
			return -1;
		}
		s = xmalloc(sizeof(*s));
		stasis__ipc_shm__init(s);
		s->perm = perm_of(&ds.shm_perm, id);
		s->size = ds.shm_segsz;
		s->has_nattch = true;
		s->nattch = ds.shm_nattch;
		e->ipc_shms = xrealloc(e->ipc_shms, (e->n_ipc_shms + 1) * sizeof(*e->ipc_shms));
		e->ipc_shms[e->n_ipc_shms++] = s;
		pr_debug(
		    "IPC namespace %u: segment %d, key %#x, mode %#o, %llu bytes, %lu attached",
		    nsid, id, s->perm->key, s->perm->mode, (unsigned long long)s->size,
		    (unsigned long)ds.shm_nattch);
		if (shm_contents(nsid, id, ds.shm_segsz, info.shm_swp == 0, w))
			return -1;
	}
	return 0;
}

static int collect_sem(uint32_t nsid, Stasis__NsEntry *e)
{
	struct seminfo info;
	union semun arg = {.__buf = &info};
	int max = semctl(0, 0, SEM_INFO, arg);

	if (max < 0) {
		pr_perror("IPC namespace %u: cannot list its semaphores", nsid);
		return -1;
	}
	for (int idx = 0; idx <= max; idx++) {
		struct semid_ds ds;
		unsigned short *vals;
		Stasis__IpcSem *s;
		int id;

		arg.buf = &ds;
		id = semctl(idx, 0, SEM_STAT, arg);
		if (id < 0)
			continue;
		vals = xmalloc((ds.sem_nsems + 1) * sizeof(*vals));
		arg.array = vals;
		if (semctl(id, 0, GETALL, arg)) {
			pr_perror("IPC namespace %u: cannot read the values of semaphore set %d",
				  nsid, id);
			free(vals);
			return -1;
		}
		s = xmalloc(sizeof(*s));
		stasis__ipc_sem__init(s);
		s->perm = perm_of(&ds.sem_perm, id);
		s->n_values = ds.sem_nsems;
		s->values = xmalloc((ds.sem_nsems + 1) * sizeof(*s->values));
		for (size_t i = 0; i < ds.sem_nsems; i++)
			s->values[i] = vals[i];
		free(vals);
		e->ipc_sems = xrealloc(e->ipc_sems, (e->n_ipc_sems + 1) * sizeof(*e->ipc_sems));
		e->ipc_sems[e->n_ipc_sems++] = s;
		pr_debug("IPC namespace %u: semaphore set %d, key %#x, %lu semaphores", nsid, id,
			 s->perm->key, (unsigned long)ds.sem_nsems);
	}
	return 0;
}

static int collect_msg(uint32_t nsid, Stasis__NsEntry *e, struct img_writer *w)
{
	struct msginfo info;
	int max = msgctl(0, MSG_INFO, (struct msqid_ds *)&info);

	if (max < 0) {
		pr_perror("IPC namespace %u: cannot list its message queues", nsid);
		return -1;
	}
	for (int idx = 0; idx <= max; idx++) {
		struct msqid_ds ds;
		Stasis__IpcMsgQueue *q;
		struct {
			long mtype;
			char text[];
		} * buf;
		size_t bufsz;
		int id = msgctl(idx, MSG_STAT, &ds);

		if (id < 0)
			continue;
		q = xmalloc(sizeof(*q));
		stasis__ipc_msg_queue__init(q);
		q->perm = perm_of(&ds.msg_perm, id);
		q->qbytes = ds.msg_qbytes;
		q->qnum = ds.msg_qnum;
		e->ipc_msgqs = xrealloc(e->ipc_msgqs, (e->n_ipc_msgqs + 1) * sizeof(*e->ipc_msgqs));
		e->ipc_msgqs[e->n_ipc_msgqs++] = q;
		pr_debug("IPC namespace %u: message queue %d, key %#x, %lu messages, %lu bytes",
			 nsid, id, q->perm->key, (unsigned long)ds.msg_qnum,
			 (unsigned long)ds.__msg_cbytes);
		/* no message is larger than all of them */
		bufsz = ds.__msg_cbytes;
		buf = xmalloc(sizeof(*buf) + bufsz + 1);
		for (unsigned long i = 0; i < ds.msg_qnum; i++) {
			Stasis__IpcMsg m = STASIS__IPC_MSG__INIT;
			ssize_t n = msgrcv(id, buf, bufsz, i, IPC_NOWAIT | MSG_COPY);

			if (n < 0) {
				if (errno == ENOSYS)
					pr_err("IPC namespace %u: this kernel cannot copy messages "
					       "(msgrcv MSG_COPY needs CONFIG_CHECKPOINT_RESTORE)",
					       nsid);
				else
					pr_perror(
					    "IPC namespace %u: cannot copy message %lu of "
					    "queue %d (one larger than kernel.msgmax cannot be "
					    "copied)",
					    nsid, i, id);
				free(buf);
				return -1;
			}
			m.ns = nsid;
			m.msqid = id;
			m.mtype = buf->mtype;
			m.text.len = n;
			m.text.data = (uint8_t *)buf->text;
			if (imgw_record(w, "ipc-msg", &m.base)) {
				free(buf);
				return -1;
			}
		}
		free(buf);
	}
	return 0;
}

/*
 * The POSIX message queues of the namespace this thread is in: a child
 * mounts the namespace's mqueue file system in a mount namespace of its
 * own and counts the names (raw system calls only: we may have threads).
 * The count (at most 254), or -1.
 */
static int count_mqueues(void)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		char buf[4096];
		long n, count = 0;
		int fd;

		if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
		    mount("mqueue", "/tmp", "mqueue", 0, NULL))
			_exit(255);
		fd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			_exit(255);
		while ((n = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0)
			for (long off = 0; off < n;) {
				struct dirent64 *d = (struct dirent64 *)(buf + off);

				if (strcmp(d->d_name, ".") && strcmp(d->d_name, ".."))
					count++;
				off += d->d_reclen;
			}
		_exit(n < 0 ? 255 : count > 254 ? 254 : count);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status) == 255)
		return -1;
	return WEXITSTATUS(status);
}

/* The task SysV mappings in namespace e (by inode) name its segments. */
static int check_attaches(const Stasis__NsEntry *e)
{
	for (size_t i = 0; i < nr_attaches; i++) {
		const struct attach *a = &attaches[i];
		const Stasis__IpcShm *s = NULL;

		if (a->ns_ino != e->inode)
			continue;
		for (size_t j = 0; j < e->n_ipc_shms; j++)
			if (e->ipc_shms[j]->perm->id == a->shmid)
				s = e->ipc_shms[j];
		/* a segment marked removed has lost its key (IPC_PRIVATE) */
		if (!s || (s->perm->key != a->key && !(s->perm->mode & SHM_DEST)) ||
		    (s->size + PAGE_SIZE - 1) / PAGE_SIZE * PAGE_SIZE != a->len) {
			pr_err("task %d: the SysV segment attached at %#lx (id %d, key %#x) is not "
			       "one of its IPC namespace (attached before the task changed "
			       "namespace?): not supported",
			       a->pid, a->start, a->shmid, a->key);
			return -1;
		}
	}
	return 0;
}

int ipcns_collect(uint32_t nsid, Stasis__NsEntry *e, struct img_writer *w)
{
	bool rmid_forced = false;
	int ret = -1, nmq;

	if (ns_enter(nsid))
		return -1;
	for (size_t i = 0; i < ARRAY_SIZE(sysctls); i++) {
		char *v = read_sysctl(sysctls[i]);
		Stasis__IpcSysctl *s;

		if (!v) {
			if (!strcmp(sysctls[i], "kernel/auto_msgmni"))
				continue;
			pr_perror("IPC namespace %u: cannot read /proc/sys/%s", nsid, sysctls[i]);
			goto out;
		}
		if (!strcmp(sysctls[i], "kernel/shm_rmid_forced"))
			rmid_forced = strcmp(v, "0") != 0;
		s = xmalloc(sizeof(*s));
		stasis__ipc_sysctl__init(s);
		s->name = xstrdup(sysctls[i]);
		s->value = v;
		e->ipc_sysctls =
		    xrealloc(e->ipc_sysctls, (e->n_ipc_sysctls + 1) * sizeof(*e->ipc_sysctls));
		e->ipc_sysctls[e->n_ipc_sysctls++] = s;
	}
	nmq = count_mqueues();
	if (nmq < 0) {
		pr_err("IPC namespace %u: cannot look for POSIX message queues in it", nsid);
		goto out;
	}
	if (nmq) {
		pr_err(
		    "IPC namespace %u has %s%d POSIX message queue%s (mq_open), which stasis does "
		    "not carry",
		    nsid, nmq == 254 ? "at least " : "", nmq, nmq == 1 ? "" : "s");
		goto out;
	}
	if (collect_shm(nsid, e, rmid_forced, w) || collect_sem(nsid, e) || collect_msg(nsid, e, w))
		goto out;
	ret = 0;
out:
	ns_leave(STASIS__NS_KIND__NS_IPC);
	if (!ret)
		ret = check_attaches(e);
	if (!ret)
		pr_info("IPC namespace %u: %zu segments, %zu semaphore sets, %zu message queues",
			nsid, e->n_ipc_shms, e->n_ipc_sems, e->n_ipc_msgqs);
	return ret;
}
