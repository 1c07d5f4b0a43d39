/* SPDX-License-Identifier: GPL-2.0 */
#ifndef STASIS_COLLECT_H
#define STASIS_COLLECT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "stasis/cgmount.h"
#include "stasis/ptrace.h"
#include "stasis/tree.h"
#include "stasis-image/image.h"

struct collect_opts {
	bool shell_job;
	bool leave_running;
	bool leave_stopped;
	int ack_fd;
	int stats_fd;	      /* a copy of stats-dump, for a front-end whose stream goes away */
	uint64_t ghost_limit; /* deleted files up to this size travel in the checkpoint */
	bool link_remap;
	bool file_locks;
	bool tcp_established; /* carry established TCP connections (TCP_REPAIR) */
	bool tcp_close;	      /* dump them as closed instead */
	bool skip_in_flight;  /* drop connections a listener has not accepted */
	bool force_irmap;   /* watches whose name is gone: search by inode */
	char **irmap_paths; /* --irmap-scan-path, searched first */
	int nr_irmap_paths;
	int network_lock;     /* enum netlock_method */
	char **external; /* --external RES, as given (unix[INO]) */
	int nr_external;
	bool ext_unix_sk; /* --ext-unix-sk: --external for every unix socket */
	bool pre_dump;	 /* memory only, the tree keeps running */
	bool track_mem;	 /* arm the memory tracker for a next link */
	bool has_prev_track_id; /* the parent link's tracker: unchanged pages stay there */
	bool prev_track_current; /* whichever link the running tracker belongs to */
	uint8_t prev_track_id[16];
	/* --lazy-pages: private anonymous pages are left out of the stream
	 * and served on lazy_req_fd / lazy_resp_fd once it is stored */
	bool lazy_pages;
	int lazy_req_fd, lazy_resp_fd;
	const char *lazy_stats_file;
	bool background_snapshot; /* -R, pre-dump: copy the memory while the tree runs */
	bool reader_copies;	  /* stdout's reader copies: pages go by reference */
	struct cg_root *cgroup_roots; /* --cgroup-root [CTRL:]/PATH: where the walk starts */
	int nr_cgroup_roots;
};

/* opts.c: the options, with their defaults until collect_parse_opts
 * parses the command line (0, or -1 once the error or usage is printed). */
extern struct collect_opts opts;
int collect_parse_opts(int argc, char **argv);

/* The tree being dumped (all of it, zombies included). */
const struct tree *collect_tree(void);

/* A run of pages to copy: filled by mm_collect, written by mm_write_pages. */
struct page_run {
	unsigned long vaddr;
	unsigned long nr_pages;
	bool in_parent; /* shared copy-on-write with the parent: not copied */
	/* pages of the shared memory object behind the mapping vma_start-
	 * vma_end, at object offset shm_off: read from the object, since a
	 * private mapping of it shows its own copies */
	bool shm;
	unsigned long shm_off, vma_start, vma_end;
	bool in_prev;	/* not written since the previous link: in its pages */
	bool lazy;	/* private anonymous, left to the lazy page server */
	uint8_t *sent;	/* lazy: a bit per page sent (lazy.c) */
};

/* Per-task state while it is being collected. */
struct ctask {
	pid_t pid;
	const struct tree_task *tt;
	struct rtask *threads;	  /* one per thread, leader first */
	uint64_t *saved_sigmask;  /* per thread, as seized */
	bool parasite;		  /* remote session active (regs/mask changed) */
	unsigned long scratch;	  /* a page mapped in the task for remote calls */
	struct page_run *runs;
	size_t nr_runs;
	unsigned pages_id;
	struct ctask *parent; /* set when the restorer forks it from its parent */
	Stasis__Vma **vmas;   /* as dumped, for the children's comparison */
	size_t nr_vmas;
	/* the mappings as mm_collect read them from smaps, for bgsnap_arm:
	 * smaps walks every page table, so it is read once while frozen */
	struct proc_vma *kvmas;
	int nr_kvmas;
};

/* Remote session: blocks signals, finds a syscall, maps a scratch page. */
int parasite_start(struct ctask *ct);
/* Undoes everything parasite_start did; safe to call more than once. */
int parasite_stop(struct ctask *ct);
long parasite_call(struct ctask *ct, int thread, long nr, unsigned long a1, unsigned long a2,
		   unsigned long a3, unsigned long a4);

int pstree_collect(const struct tree *t, struct img_writer *w);
int core_collect(struct ctask *ct, struct img_writer *w);
int signals_collect_task(struct ctask *ct, Stasis__TaskCore *tc);
int signals_collect_thread(struct ctask *ct, int thread, Stasis__ThreadCore *th);
/* creds.c, timers.c, sched.c: per-process attributes (issue 4) */
int creds_collect_thread(struct ctask *ct, int thread, Stasis__TaskCore *tc,
			 Stasis__ThreadCore *th);
int timers_collect(struct ctask *ct, Stasis__TaskCore *tc);
int timers_collect_thread(struct ctask *ct, int thread, Stasis__ThreadCore *th);
int sched_collect_thread(struct ctask *ct, int thread, Stasis__ThreadCore *th);
int cgroup_collect_thread(struct ctask *ct, int thread, Stasis__ThreadCore *th);
/* the cgroups image: the directories at and below the threads' cgroups */
int cgroup_write(struct img_writer *w);
/* --cgroup-props SPEC, --cgroup-props-file FILE: the settings recorded per
 * controller, merged into or replacing the built-in lists */
int cgroup_props_parse(const char *spec, const char *what);
int cgroup_props_file(const char *path);
/* collect/pidns.c: a tree rooted at the init of a PID namespace of its own
 * (refused otherwise: logged, -1); pidns_vpid: a PID we see as the tree
 * sees it (the same outside a namespace; 0: not visible there);
 * pidns_task_id: pid's NSpgid or NSsid as its namespace sees it (0: not
 * visible there) */
int pidns_prepare(const struct tree *t);
bool pidns_active(void);
pid_t pidns_vpid(pid_t host);
pid_t pidns_task_id(pid_t pid, const char *key);
/* collect/ns.c: the task's namespaces into pe (refused: logged, -1) */
int ns_task_ids(pid_t pid, Stasis__PstreeEntry *pe);
/* the id of the namespace of nsfd (an nsfs descriptor; 0: ours), or -1 */
int ns_register_fd(Stasis__NsKind kind, int nsfd);
/* This thread into namespace id, and back to ours (which cannot fail). */
int ns_enter(uint32_t id);
void ns_leave(Stasis__NsKind kind);
int ns_write(struct img_writer *w);
/* collect/ipcns.c: IPC namespace nsid's sysctls and SysV objects into e,
 * the segments' contents and the messages into images ipc-shm, ipc-msg */
/* collect/netns.c: network namespace nsid read from inside (netns_check,
 * once, as soon as it is met: -1 logged for a link that is not carried);
 * netns_collect: its links, addresses, routes and sysctls into e */
int netns_check(uint32_t nsid);
int netns_collect(uint32_t nsid, Stasis__NsEntry *e);
int ipcns_collect(uint32_t nsid, Stasis__NsEntry *e, struct img_writer *w);
/* collect/mntns.c: a mount namespace nsid of the tree (held by nsfd, task
 * pid in it) compared with its base and checked (mntns_check, while
 * nothing is touched; mntns_check_task for every task in one); its
 * difference and its tmpfs files (mntns_collect); mntns_path: an absolute
 * path of task pid's, to look up as it does (in buf of size, or path
 * itself when pid is in our namespace). */
int mntns_check(uint32_t nsid, pid_t pid, int nsfd);
int mntns_check_task(pid_t pid);
int mntns_collect(uint32_t nsid, Stasis__NsEntry *e, struct img_writer *w);
const char *mntns_path(pid_t pid, const char *path, char *buf, size_t size);
/* collect/ns.c: the id of pid's mount namespace, 0 for ours */
uint32_t ns_mnt_id(pid_t pid);
/* A task's SysV mapping (the whole attach: len), checked against the
 * segments of its IPC namespace; refused (-1, said) in ours. */
int ipcns_note_attach(pid_t pid, unsigned long start, int shmid, uint32_t key, uint64_t len);
int mm_collect(struct ctask *ct, struct img_writer *w);
int mm_write_pages(struct ctask *ct, struct img_writer *w);
int fs_collect(struct ctask *ct, struct img_writer *w);
int files_collect(struct ctask *ct, struct img_writer *w);
int files_write(struct img_writer *w);
/* pipes.c, ghost.c, locks.c: pipe data and deleted files are written
 * after the files image; ghost_abort removes link remaps of a failed dump. */
int pipes_write(struct img_writer *w);
struct proc_vma;
struct stat;
/* A mapping of a deleted file: registers it, fills *sb as stat would. */
int ghost_collect_vma(struct ctask *ct, const struct proc_vma *v, struct stat *sb);
/* A deleted directory (working dir, root) reached through src, as link. */
int ghost_collect_path(pid_t pid, const char *what, const char *link, const char *src,
		       uint32_t *id);
int ghost_write(struct img_writer *w);
/* A file's contents into image as DataChunk records of id (holes left
 * out); buf holds DATA_CHUNK_MAX bytes, what names the file in messages. */
#define DATA_CHUNK_MAX (1u << 20)
int file_data_write(struct img_writer *w, const char *image, uint32_t id, int fd, off_t end,
		    const char *what, char *buf);
/* packet.c: a mapping of a socket (path socket:[INO]); the ring of a packet
 * socket is recorded in pv (packet_ring), anything else refused. */
bool packet_ring_vma(const struct proc_vma *v);
int packet_collect_vma(struct ctask *ct, const struct proc_vma *v, Stasis__Vma *pv);
/* aio.c: an aio ring mapping, added to mm->aios */
int aio_collect_vma(struct ctask *ct, const struct proc_vma *v, Stasis__MmEntry *mm);
void ghost_abort(void);
/* inet.c: connections left in repair mode by the dump; resume takes them
 * out (the tree runs again), release just drops our copies (killed). */
void inet_resume(void);
/* tcp-recvq, tcp-sendq: the queues too big for the files image */
int inet_write(struct img_writer *w);
void inet_release(void);
/* The network lock of the tree's connections (--tcp-established), taken
 * once the tree is frozen; unlock when the tree runs again here (a killed
 * tree's lock is the restore's to remove). */
int inet_lock(pid_t root);
bool inet_locked(void);
void inet_unlock(pid_t root);
int locks_collect(struct ctask *ct, struct img_writer *w);
/* lazy.c: once the images are stored, serve the lazy runs of every task
 * until the destination says it has them all (0) or gives up (-1). */
int lazy_serve(struct ctask *cts, int nr);

#endif
