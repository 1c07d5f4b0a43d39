// SPDX-License-Identifier: GPL-2.0
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/proc.h"
#include "stasis/util.h"

ssize_t proc_read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read_full(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return n;
}

static const struct {
	const char name[3];
	uint64_t flag;
} vmflag_names[] = {
	{ "gd", VMF_GROWSDOWN }, { "dc", VMF_DONTCOPY }, { "dd", VMF_DONTDUMP },
	{ "hg", VMF_HUGEPAGE },	 { "nh", VMF_NOHUGEPAGE }, { "mg", VMF_MERGEABLE },
	{ "rr", VMF_RANDREAD },	 { "sr", VMF_SEQREAD },	   { "wf", VMF_WIPEONFORK },
	{ "lo", VMF_LOCKED },	 { "nr", VMF_NORESERVE },  { "dp", VMF_DROPPABLE },
	{ "um", VMF_UFFD_MISSING }, { "uw", VMF_UFFD_WP }, { "ui", VMF_UFFD_MINOR },
	{ "mw", VMF_MAYWRITE },	 { "ht", VMF_HUGETLB },	   { "sl", VMF_SEALED },
};

static uint64_t parse_vmflags(const char *s)
{
	uint64_t flags = 0;

	while (*s) {
		while (*s == ' ')
			s++;
		for (size_t i = 0; i < ARRAY_SIZE(vmflag_names); i++)
			if (!strncmp(s, vmflag_names[i].name, 2) && (s[2] == ' ' || s[2] == '\n' || !s[2]))
				flags |= vmflag_names[i].flag;
		while (*s && *s != ' ')
			s++;
	}
	return flags;
}

/* The mappings listed in /proc/PID/NAME: maps, or smaps with VmFlags. */
static int read_vma_list(pid_t pid, const char *name, struct proc_vma **out)
{
	char path[64], *line = NULL;
	size_t cap = 0, nr = 0, alloc = 0;
	struct proc_vma *vmas = NULL, *cur = NULL;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	f = fopen(path, "re");
	if (!f) {
		pr_perror("cannot open %s", path);
		return -1;
	}
	while (getline(&line, &cap, f) > 0) {
		unsigned long start, end, pgoff, ino;
		unsigned int maj, min;
		char perms[5];
		int off = 0;

		if (sscanf(line, "%lx-%lx %4s %lx %x:%x %lu %n", &start, &end, perms, &pgoff, &maj,
			   &min, &ino, &off) == 7 && off) {
			if (nr == alloc) {
				alloc = alloc ? alloc * 2 : 64;
				vmas = xrealloc(vmas, alloc * sizeof(*vmas));
			}
			cur = &vmas[nr++];
			memset(cur, 0, offsetof(struct proc_vma, path) + 1);
			cur->start = start;
			cur->end = end;
			cur->pgoff = pgoff;
			cur->prot = (perms[0] == 'r' ? PROT_READ : 0) |
				    (perms[1] == 'w' ? PROT_WRITE : 0) |
				    (perms[2] == 'x' ? PROT_EXEC : 0);
			cur->shared = perms[3] == 's';
			cur->dev_major = maj;
			cur->dev_minor = min;
			cur->ino = ino;
			cur->vmflags = 0;
			char *p = line + off;
			p[strcspn(p, "\n")] = 0;
			snprintf(cur->path, sizeof(cur->path), "%s", p);
		} else if (cur && !strncmp(line, "KernelPageSize:", 15)) {
			cur->page_size = strtoul(line + 15, NULL, 10) * 1024;
		} else if (cur && !strncmp(line, "VmFlags:", 8)) {
			cur->vmflags = parse_vmflags(line + 8);
		}
	}
	free(line);
	fclose(f);
	*out = vmas;
	return nr;
}

int proc_read_vmas(pid_t pid, struct proc_vma **out)
{
	return read_vma_list(pid, "smaps", out);
}

int proc_read_maps(pid_t pid, struct proc_vma **out)
{
	return read_vma_list(pid, "maps", out);
}

int proc_read_stat(pid_t pid, pid_t tid, struct proc_stat *st)
{
	char path[64], buf[4096], *p, *comm_end;
	unsigned long v[52];
	int i;

	if (tid)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (proc_read_file(path, buf, sizeof(buf)) < 0) {
		pr_perror("cannot read %s", path);
		return -1;
	}
	p = strchr(buf, '(');
	comm_end = strrchr(buf, ')');
	if (!p || !comm_end || comm_end < p) {
		pr_err("cannot parse %s", path);
		return -1;
	}
	memset(st, 0, sizeof(*st));
	st->pid = atoi(buf);
	snprintf(st->comm, sizeof(st->comm), "%.*s", (int)(comm_end - p - 1), p + 1);
	p = comm_end + 2;
	st->state = *p;
	p += 2;
	/* v[4] is field 4 (ppid) in proc(5) numbering */
	for (i = 4; i <= 52 && *p; i++) {
		char *end;

		v[i - 1] = strtoul(p, &end, 10);
		if (end == p)
			break;
		p = end;
		while (*p == ' ')
			p++;
	}
	if (i <= 52) {
		pr_err("cannot parse %s (%d fields)", path, i);
		return -1;
	}
	st->ppid = v[3];
	st->pgid = v[4];
	st->sid = v[5];
	st->tty_nr = v[6];
	st->flags = v[8];
	st->start_code = v[25];
	st->end_code = v[26];
	st->start_stack = v[27];
	st->start_data = v[44];
	st->end_data = v[45];
	st->start_brk = v[46];
	st->arg_start = v[47];
	st->arg_end = v[48];
	st->env_start = v[49];
	st->env_end = v[50];
	st->exit_code = v[51];
	return 0;
}

static int list_dir_numbers(const char *path, pid_t **out)
{
	DIR *d = opendir(path);
	struct dirent *de;
	pid_t *ids = NULL;
	int nr = 0;

	if (!d)
		return -1;
	while ((de = readdir(d))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		ids = xrealloc(ids, (nr + 1) * sizeof(*ids));
		ids[nr++] = atoi(de->d_name);
	}
	closedir(d);
	*out = ids;
	return nr;
}

int proc_list_threads(pid_t pid, pid_t **tids)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	return list_dir_numbers(path, tids);
}

int proc_list_children(pid_t pid, pid_t tid, pid_t **kids)
{
	char path[64], buf[65536], *p;
	pid_t *ids = NULL;
	int nr = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, tid);
	if (proc_read_file(path, buf, sizeof(buf)) < 0)
		return -1;
	for (p = buf; *p;) {
		char *end;
		long v = strtol(p, &end, 10);

		if (end == p)
			break;
		ids = xrealloc(ids, (nr + 1) * sizeof(*ids));
		ids[nr++] = v;
		p = end;
		while (*p == ' ')
			p++;
	}
	*kids = ids;
	return nr;
}

int proc_status_field(pid_t pid, const char *key, char *out, size_t size)
{
	char path[64], buf[8192], *p;
	size_t klen = strlen(key);

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if (proc_read_file(path, buf, sizeof(buf)) < 0)
		return -1;
	for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (!strncmp(p, key, klen) && p[klen] == ':') {
			p += klen + 1;
			while (*p == ' ' || *p == '\t')
				p++;
			snprintf(out, size, "%.*s", (int)strcspn(p, "\n"), p);
			return 0;
		}
	}
	return -1;
}

static bool in_set(const pid_t *set, size_t nr, pid_t p)
{
	for (size_t i = 0; i < nr; i++)
		if (set[i] == p)
			return true;
	return false;
}

/* Completes set with every descendant of its tasks found in /proc. */
static pid_t *add_descendants(pid_t *set, size_t *nrp)
{
	size_t nr = *nrp, before;

	do {
		DIR *d = opendir("/proc");
		struct dirent *de;

		before = nr;
		while (d && (de = readdir(d))) {
			char path[64], buf[512], *p;
			pid_t pid = atoi(de->d_name), ppid;
			FILE *f;

			if (pid <= 0 || in_set(set, nr, pid))
				continue;
			snprintf(path, sizeof(path), "/proc/%d/stat", pid);
			f = fopen(path, "re");
			if (!f)
				continue;
			p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
			fclose(f);
			if (p && sscanf(p + 2, "%*c %d", &ppid) == 1 && in_set(set, nr, ppid)) {
				set = xrealloc(set, (nr + 1) * sizeof(*set));
				set[nr++] = pid;
			}
		}
		if (d)
			closedir(d);
	} while (nr != before);
	*nrp = nr;
	return set;
}

void proc_kill_with_descendants(pid_t *set, size_t nr)
{
	set = add_descendants(set, &nr);
	for (size_t i = 0; i < nr; i++)
		kill(set[i], SIGKILL);
	free(set);
}

pid_t pidfd_pid(int pidfd)
{
	char path[64], buf[1024], *p;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	if (proc_read_file(path, buf, sizeof(buf)) < 0 || !(p = strstr(buf, "\nPid:")))
		return -1;
	return (pid_t)strtol(p + 5, NULL, 10);
}

void proc_kill_pidfds_with_descendants(const int *pidfds, size_t nr)
{
	size_t nr_pids = 0, nr_roots;
	pid_t *set = NULL;

	for (size_t i = 0; i < nr; i++) {
		pid_t pid = pidfd_pid(pidfds[i]);

		if (pid > 0) {
			set = xrealloc(set, (nr_pids + 1) * sizeof(*set));
			set[nr_pids++] = pid;
		}
	}
	nr_roots = nr_pids;
	set = add_descendants(set, &nr_pids);
	for (size_t i = 0; i < nr; i++)
		syscall(SYS_pidfd_send_signal, pidfds[i], SIGKILL, NULL, 0);
	for (size_t i = nr_roots; i < nr_pids; i++)
		kill(set[i], SIGKILL);
	free(set);
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static char *mountinfo_unescape(const char *s)
{
	char *out = xstrdup(s), *o = out;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0');
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = 0;
	return out;
}

int proc_parse_mountinfo(char *line, struct proc_mount *m)
{
	char *save = NULL, *tok[10] = {0}, *f;
	int n = 0;

	memset(m, 0, sizeof(*m));
	for (f = strtok_r(line, " \n", &save); f && n < 6; f = strtok_r(NULL, " \n", &save))
		tok[n++] = f;
	if (n < 6)
		return -1;
	/* optional fields up to "-" */
	for (; f && strcmp(f, "-"); f = strtok_r(NULL, " \n", &save)) {
		if (!strncmp(f, "shared:", 7))
			m->shared = atoi(f + 7);
		else if (!strncmp(f, "master:", 7))
			m->master = atoi(f + 7);
		else if (!strcmp(f, "unbindable"))
			m->unbindable = true;
	}
	if (!f)
		return -1;
	for (n = 0; n < 3 && (f = strtok_r(NULL, " \n", &save)); n++)
		tok[5 + 1 + n] = f;
	if (n < 2)
		return -1;
	m->id = atoi(tok[0]);
	m->parent = atoi(tok[1]);
	if (sscanf(tok[2], "%u:%u", &m->major, &m->minor) != 2)
		return -1;
	m->root = mountinfo_unescape(tok[3]);
	m->mp = mountinfo_unescape(tok[4]);
	m->opts = xstrdup(tok[5]);
	m->fstype = mountinfo_unescape(tok[6]);
	m->source = mountinfo_unescape(tok[7]);
	m->super = xstrdup(n == 3 ? tok[8] : "");
	return 0;
}

void proc_mount_free(struct proc_mount *m)
{
	free(m->root);
	free(m->mp);
	free(m->opts);
	free(m->fstype);
	free(m->source);
	free(m->super);
}
