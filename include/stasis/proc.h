/* SPDX-License-Identifier: GPL-2.0 */
/* Parsers for /proc/PID files, shared by freeze and collect. */
#ifndef STASIS_PROC_H
#define STASIS_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct proc_vma {
	unsigned long start, end, pgoff;
	unsigned int prot;	/* PROT_* */
	bool shared;		/* 's' in maps */
	unsigned int dev_major, dev_minor;
	unsigned long ino;
	unsigned long page_size; /* smaps KernelPageSize, in bytes; 0 from maps */
	char path[4096]; /* "" for anonymous, "[heap]" etc. for special */
	uint64_t vmflags; /* VMF_* from smaps VmFlags */
};

/* smaps VmFlags we care about */
#define VMF_GROWSDOWN (1ull << 0)
#define VMF_DONTCOPY (1ull << 1)  /* MADV_DONTFORK */
#define VMF_DONTDUMP (1ull << 2)
#define VMF_HUGEPAGE (1ull << 3)
#define VMF_NOHUGEPAGE (1ull << 4)
#define VMF_MERGEABLE (1ull << 5)
#define VMF_RANDREAD (1ull << 6)
#define VMF_SEQREAD (1ull << 7)
#define VMF_WIPEONFORK (1ull << 8)
#define VMF_LOCKED (1ull << 9)
#define VMF_NORESERVE (1ull << 10)
#define VMF_DROPPABLE (1ull << 11) /* MAP_DROPPABLE: contents may vanish */
#define VMF_MAYWRITE (1ull << 12)  /* may be made writable (by mprotect) */
#define VMF_HUGETLB (1ull << 13)
#define VMF_SEALED (1ull << 14) /* mseal */
/* registered with a userfaultfd (missing, write-protect, minor faults) */
#define VMF_UFFD_MISSING (1ull << 20)
#define VMF_UFFD_WP (1ull << 21)
#define VMF_UFFD_MINOR (1ull << 22)
#define VMF_UFFD (VMF_UFFD_MISSING | VMF_UFFD_WP | VMF_UFFD_MINOR)

/* Reads /proc/PID/smaps; returns the number of VMAs (in *vmas, malloc'd) or -1. */
int proc_read_vmas(pid_t pid, struct proc_vma **vmas);
/* The same from /proc/PID/maps, vmflags 0: much cheaper, as smaps walks
 * every page table of the task to count its pages. */
int proc_read_maps(pid_t pid, struct proc_vma **vmas);

/* The fields of /proc/PID/stat that stasis uses (numbers from proc(5)). */
struct proc_stat {
	pid_t pid, ppid, pgid, sid;
	unsigned int tty_nr;
	char state;
	char comm[64];
	unsigned long flags;
	unsigned long start_code, end_code, start_stack;
	unsigned long start_data, end_data, start_brk;
	unsigned long arg_start, arg_end, env_start, env_end;
	int exit_code;
};
int proc_read_stat(pid_t pid, pid_t tid, struct proc_stat *st);

/* Whole small /proc file into buf (NUL-terminated); length or -1. */
ssize_t proc_read_file(const char *path, char *buf, size_t size);

/* A line of /proc/PID/mountinfo, its names unescaped (allocated). */
struct proc_mount {
	uint32_t id, parent;
	unsigned major, minor;
	char *root, *mp, *opts, *fstype, *source, *super; /* opts: the mount's own */
	uint32_t shared, master;			  /* peer groups, 0: none */
	bool unbindable;
};

/* Parses line (changed on the way); -1 when it is not a mountinfo line. */
int proc_parse_mountinfo(char *line, struct proc_mount *m);
void proc_mount_free(struct proc_mount *m);
/* Threads of pid into *tids (malloc'd); count or -1. */
int proc_list_threads(pid_t pid, pid_t **tids);
/* Children of one thread (/proc/PID/task/TID/children); count or -1. */
int proc_list_children(pid_t pid, pid_t tid, pid_t **kids);
/* Value of a "Key:\tvalue" line of /proc/PID/status as text; 0 or -1. */
int proc_status_field(pid_t pid, const char *key, char *out, size_t size);

/* SIGKILL the NR tasks of SET (malloc'ed, freed here) and every
 * descendant of them found in /proc; the set is completed before anything
 * is killed, so that no child is reparented out of sight first. */
void proc_kill_with_descendants(pid_t *set, size_t nr);
/* The same for tasks held by pidfd: those still alive and seen from here
 * (a pidfd's fdinfo gives the PID in our namespace) and their descendants;
 * the tasks themselves are signalled through their pidfds. */
void proc_kill_pidfds_with_descendants(const int *pidfds, size_t nr);
/* The PID of pidfd's task in our PID namespace: 0 not seen from here, -1
 * gone (or not a pidfd). */
pid_t pidfd_pid(int pidfd);

#endif
