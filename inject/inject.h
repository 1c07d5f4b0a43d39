/* SPDX-License-Identifier: GPL-2.0 */
#ifndef STASIS_INJECT_H
#define STASIS_INJECT_H

#include <stdbool.h>
#include <sys/types.h>

#include "stasis/cgmount.h"
#include "stasis/ptrace.h"
#include "stasis-image/image.h"

struct inject_opts {
	bool detached;
	bool leave_stopped;
	bool shell_job;
	const char *pidfile;
	bool file_locks;
	bool tcp_close; /* established TCP connections restored closed */
	int file_validation; /* FILE_VALIDATION_* */
	struct inherit_fd {
		int fd;		 /* ours, from the caller */
		const char *res; /* what it stands for: socket:[INO], ... */
	} *inherit_fds;	 /* --inherit-fd fd[N]:RES */
	int nr_inherit_fds;
	int wait_pids_free; /* seconds; a migration within one host */
	bool lazy_pages;      /* private anonymous memory left to the daemon */
	const char *lazy_dir; /* where its socket is (-W) */
	int manage_cgroups;   /* --manage-cgroups MODE (enum cg_mode) */
	struct cg_root *cgroup_roots; /* --cgroup-root [CTRL:]/PATH */
	int nr_cgroup_roots;
	char **join_ns; /* --join-ns NS:PID|FILE, as given */
	int nr_join_ns;
	char **veth_pairs; /* --veth-pair IN=OUT, as given */
	int nr_veth_pairs;
};

/* --manage-cgroups: criu's modes (inject/cgroup.c) */
enum cg_mode {
	CG_IGNORE, /* the default: the tree stays in our cgroups */
	CG_NONE,   /* into existing cgroups, nothing else */
	CG_PROPS,  /* into existing cgroups, their settings restored */
	CG_SOFT,   /* missing ones made, with settings; existing ones kept */
	CG_FULL,   /* missing ones made; every cgroup's settings restored */
	CG_STRICT, /* every cgroup made, with settings; an existing one fails */
};
/* its name, or -1 */
int cg_mode_parse(const char *name);
const char *cg_mode_name(int mode);

/* --file-validation: how regular files are checked against the dump */
#define FILE_VALIDATION_FILESIZE 1

/* opts.c: the options, with their defaults until inject_parse_opts
 * parses the command line (0, or -1 once the error or usage is printed). */
extern struct inject_opts opts;
int inject_parse_opts(int argc, char **argv);

/* records.c: the record images of the checkpoint, held in memory (page
 * data is not). records_load reads every record up to the first page
 * frame; returns imgr_next's verdict for the frame left in *f (1 pages,
 * 0 end, -1 error). */
int records_load(struct img_reader *r, struct img_frame *f);
/* Unpacks the idx-th record of image into a message the caller owns
 * (NULL if absent, or logged if malformed). */
void *records_get(const char *image, unsigned idx, const ProtobufCMessageDescriptor *desc);
unsigned records_count(const char *image);
void records_free(void);

/* The gadget: one code page (`syscall; int3`) and scratch pages, mapped
 * where no restored mapping goes, through which every remote call runs. */
#define GADGET_SCRATCH_PAGES 16

/* A thread being restored; threads[0] of a task is its leader, whose
 * rt points at the task's own. */
struct ithread {
	struct rtask own;
	struct rtask *rt;
	Stasis__ThreadCore *th;
};

struct page_cursor;
struct lazy_range;

/* A task being restored. */
struct itask {
	pid_t pid;	 /* in the checkpoint: as the tree sees it (its PID namespace) */
	pid_t hpid;	 /* on this host, for ptrace, /proc, kill: pid unless namespaced */
	struct rtask rt; /* the leader, through which task-wide calls run */
	bool created;
	struct itask *parent;
	Stasis__PstreeEntry *pe;
	Stasis__TaskCore *tc;
	Stasis__ThreadCore *th; /* the leader's */
	struct ithread *threads;
	size_t nr_threads;
	Stasis__MmEntry *mm;
	Stasis__FsEntry *fs;
	Stasis__FdinfoEntry **fdinfo;
	size_t nr_fdinfo;
	struct page_cursor *pages;
	unsigned long gadget;  /* 0 until placed */
	unsigned long scratch; /* gadget + PAGE_SIZE */
	struct lazy_range *lazy; /* --lazy-pages: the pages the daemon fills */
	size_t nr_lazy;
	uint64_t nr_lazy_pages[2]; /* of runs with data here, of runs shared with the parent */
	struct lazy_range *shared; /* what its children share with it (in_parent) */
	size_t nr_shared;
	bool shared_loaded;
};

/* The whole tree: tasks[0] is the root, parents come before children. */
struct itree {
	struct itask *tasks;
	size_t nr;
	int stage_base; /* inherited staging descriptors start here */
};

static inline bool task_alive(const struct itask *t)
{
	return !t->pe->zombie;
}

long icall(struct itask *t, long nr, unsigned long a1, unsigned long a2, unsigned long a3,
	   unsigned long a4, unsigned long a5, unsigned long a6);
#define ISYS(t, nr, ...) icall_args(t, nr, ##__VA_ARGS__, 0, 0, 0, 0, 0, 0)
#define icall_args(t, nr, a1, a2, a3, a4, a5, a6, ...)                                          \
	icall(t, nr, (unsigned long)(a1), (unsigned long)(a2), (unsigned long)(a3),            \
	      (unsigned long)(a4), (unsigned long)(a5), (unsigned long)(a6))
/* Copies data to the scratch area at off and returns its address there. */
unsigned long scratch_put(struct itask *t, size_t off, const void *data, size_t len);

int parasite_place(struct itree *tr, struct itask *t);
int parasite_remove(struct itask *t);

int mm_prepare(struct itask *t);
int mm_restore_vmas(struct itree *tr, struct itask *t);
/* The checks of the mappings of t that mm_restore_vmas makes first. */
int mm_check_vmas(struct itask *t);
int mm_load_pagemap(struct itask *t);
void mm_free_pagemap(struct itask *t);
/* t was forked from src, whose memory is restored: keep what it inherits. */
int mm_adopt(struct itree *tr, struct itask *t, struct itask *src);
/* Fills t's memory from the page frames of its image; f holds the next frame. */
int mm_fill_pages(struct itask *t, struct img_reader *r, struct img_frame *f, int *more);
/* A userfaultfd of t's mm made by t (userfaultfd(2) flags), in stasis-inject: fd or -errno. */
int mm_task_uffd(struct itask *t, int flags);
/* The rest of the stream: no more pages, and a valid trailer. */
int mm_end_of_stream(struct img_reader *r, struct img_frame *f, int more);
int mm_finish(struct itask *t);
/* aio.c: the task's aio contexts, rings at their old addresses */
int aio_restore(struct itask *t);
int fs_restore(struct itask *t);
int files_prepare(struct itree *tr);
int files_restore(struct itree *tr, struct itask *t);
void files_release_staged(void);
/* Once every task and thread of the tree exists: state of the tree's
 * descriptors that names tasks (SIGIO owners). */
int files_restore_late(struct itask *t);
/* Unix sockets once the tree's tasks exist (their PIDs are the credentials
 * of queued messages): the queues go in, then shutdowns and options. */
int unixsk_restore_queues(void);
/* ghost.c: a descriptor of the deleted file of fe (in stasis-inject), a
 * remote one on the deleted file mapped by v (in t, or -errno); ghost_finish, once
 * the tree is restored, drops what only the restore needed. */
int ghost_open(Stasis__FileEntry *fe);
/* A new open (flags) of ghost id in stasis-inject; the descriptor that holds
 * it there; its /proc path for a task. */
int ghost_reopen(uint32_t id, int flags);
int ghost_holder(uint32_t id);
/* Directories /proc/PID of processes gone become so (before the tree runs). */
void ghost_end_helpers(void);
int ghost_proc_path(uint32_t id, char *buf, size_t len);
/* Names kept while the descriptions are opened (symlinks) go. */
void ghost_drop_names(void);
long ghost_map_open(struct itask *t, Stasis__Vma *v, int oflags);
long ghost_exe_open(struct itask *t, const char *exe);
void ghost_finish(void);
/* packet.c: a remote descriptor (in t) of the restored packet socket whose
 * ring v maps, or -1 logged. */
long packet_ring_open(struct itask *t, Stasis__Vma *v);
/* locks.c: t takes back its file locks once its descriptors are in. */
int locks_restore(struct itask *t);
int signals_restore(struct itask *t);
int signals_restore_thread(struct itask *t, struct ithread *it);
int core_restore_attrs(struct itask *t);
/* Creates threads 1.. with their TIDs (remote clone3 in the leader). */
int core_create_threads(struct itask *t);
int core_restore_thread(struct itask *t, struct ithread *it);
int core_restore_regs(struct itask *t);
/* timers.c, creds.c, sched.c: per-process attributes (issue 4), in this
 * order after everything else remote; sched_restore from the outside. */
int timers_restore(struct itask *t);
int creds_restore(struct itask *t);
int sched_restore(struct itask *t);
/* cgroup.c: --manage-cgroups: every thread back in its cgroups;
 * cgroup_finish: the settings written once every task is in */
/* cgroup_prepare: the recorded cgroup directories made before any file is
 * opened (a task may hold one open) */
int cgroup_prepare(struct itree *tr);
int cgroup_restore(struct itask *t);
int cgroup_enter_ns_root(struct itask *root_task, char **lines, size_t n);
int cgroup_finish(void);

/* lazy.c: --lazy-pages (docs/lazy.md); img_run_lazy (image library) tells
 * which runs may be left to the lazy-pages daemon. Each task's userfaultfd, registered and handed
 * to it once the whole tree exists; the end of the tree, once released. */
void lazy_add_range(struct itask *t, uint64_t vaddr, uint64_t nr_pages);
/* Whether t leaves some of vaddr..+len lazy; whether a child of t shares
 * some of it copy-on-write (those are written eagerly, to stay shared). */
bool lazy_overlaps(const struct itask *t, uint64_t vaddr, uint64_t len);
bool lazy_shared_with_child(struct itask *t, uint64_t vaddr, uint64_t len);
/* Connects to the daemon; its death during the restore kills tr's tasks
 * (lazy_daemon_lost says so). */
int lazy_connect_daemon(struct itree *tr);
bool lazy_daemon_lost(void);
int lazy_register(struct itask *t);
int lazy_tree_done(void);
/* Waits for root, and kills the tree if the daemon dies before every page
 * is in; lazy_detach lets go of the daemon (-d: the tree is on its own). */
int lazy_wait(struct itree *tr, pid_t root, int *status);
void lazy_detach(void);
/* -d: a process of its own keeps watching the daemon in our place (with
 * the copies of the userfaultfds) once we have returned; 0 or -1. */
int lazy_watch_detached(struct itree *tr);

/* inject/ns.c: every namespace of the checkpoint made, before any file */
int ns_prepare(struct itree *tr);
/* t, just cloned by src (NULL: by us), into its namespaces */
int ns_join(struct itask *t, struct itask *src);
const Stasis__NsEntry *ns_entry(uint32_t id);
/* This thread into namespace id of that kind of the checkpoint (0: the
 * one the dump ran in; --join-ns followed), and back to ours. */
int ns_enter(Stasis__NsKind kind, uint32_t id);
void ns_leave(Stasis__NsKind kind);
/* the namespace id of the dump is one --join-ns replaced: nothing of it is remade */
bool ns_joined(Stasis__NsKind kind, uint32_t id);
/* inject/mntns.c: a mount namespace's recorded difference applied, in its
 * holder (the new namespace) */
int mntns_fill(const Stasis__NsEntry *e);
/* the first task t of a mount namespace mounts the /proc of the tree's PID
 * namespace where it had one */
int mntns_mount_procs(struct itree *tr, struct itask *t);

/* inject/ipcns.c: an IPC namespace's sysctls and SysV objects, in its
 * holder (ns.c); ipcns_finish, once every task has its mappings: segments
 * removed while attached marked so again, kernel.shm_rmid_forced;
 * ipcns_map: a SysV mapping of t, attached again in t */
int ipcns_fill(const Stasis__NsEntry *e);
/* inject/netns.c: a network namespace's links, addresses, routes and
 * sysctls, in its holder (ns.c), which calls netns_before_unshare first
 * (the namespace a veth's outside peer goes to). 0 or -1 logged. */
int netns_before_unshare(void);
int netns_fill(const Stasis__NsEntry *e);
int ipcns_finish(void);
int ipcns_map(struct itask *t, const Stasis__Vma *v);

int pstree_load(struct itree *tr);
/* The tree is the init of a PID namespace of its own and its descendants:
 * restored in a new one, where tasks have their PIDs (pid); hpid differs. */
bool pstree_namespaced(const struct itree *tr);
/* pstree_namespaced of the tree loaded */
bool pstree_in_pidns(void);
/* The restored task (or thread) of the checkpoint's pid, as we see it: pid
 * itself outside a PID namespace; in one, 0 if the tree has none (yet). */
pid_t pstree_host_pid(pid_t pid);
/* A pidfd of stasis-inject in t (before its files are restored), for
 * pidfd_getfd of our descriptors: -errno on failure. */
long pstree_remote_inject_pidfd(struct itask *t);
/* Frees what pstree_load loaded (the fuzz harness; a restore keeps it). */
void pstree_free(struct itree *tr);
/* Creates t (the root or a child, parents first) with its PID, parent and
 * session; returns the task it was forked from (itself for the root). */
struct itask *pstree_create_task(struct itree *tr, struct itask *t);
/* Once all exist: process groups, zombies exit with their status. */
int pstree_finish(struct itree *tr);
int pstree_release(struct itree *tr);
void pstree_kill(struct itree *tr);
/* inject/tty.c: the controlling terminal, when it is a pty of the tree:
 * taken by a session leader as it is created (members forked after it
 * inherit it; one that had given it up drops it), and its foreground
 * group once every group exists. */
int tty_set_ctty(struct itask *t);
int tty_restore_fg(struct itask *t);

#endif
