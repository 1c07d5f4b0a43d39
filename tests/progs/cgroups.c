// SPDX-License-Identifier: GPL-2.0
/*
 * cgroups across a checkpoint (--manage-cgroups).
 *
 *   cgroups GOFILE DIR
 *
 * Makes a cgroup beside ours in the cgroup2 hierarchy and moves the process
 * into it; mounts a v1 named hierarchy of its own (name=stasis-test-PID,
 * so that runs side by side share none of its cgroups) at DIR/cgv1 and
 * moves the leader into its cgroup lead, a second thread into thr. Below
 * the v2 cgroup and below lead it makes empty sub-cgroups, empty/nested
 * (criu's zdtm cgroup01), and gives the v2 cgroup, lead, empty and nested
 * their own modes and owners, and cgroup.procs (and v1's tasks and
 * notify_on_release) of the v2 cgroup and of lead theirs (zdtm cgroup03).
 * Prints "V2 path" and "V1 path". After GO, each thread's /proc cgroup
 * lines for both hierarchies must be what they were, and every directory
 * and file above must be there with its mode and owner; then it moves
 * back, removes the cgroups and unmounts the hierarchy.
 *
 * Settings (zdtm cgroup04): in each v1 hierarchy of memory, cpu, cpuset
 * and pids mounted here, it makes stasis-props-PID below its own cgroup
 * and an empty sub-cgroup sub below that, gives both settings other than
 * the defaults (memory.limit_in_bytes, memory.soft_limit_in_bytes,
 * memory.swappiness; cpu.shares, cpu.cfs_quota_us; cpuset.cpus and
 * cpuset.mems, which a task needs before it moves in; pids.max) and moves
 * the process into stasis-props-PID. Prints "PROPS dir" for each. After
 * GO the process must be in each of them and every setting as it was.
 *
 * Sabotage: cgroup (the leader goes back to the v1 hierarchy's root),
 * cgroup-empty (the nested empty cgroups are removed), cgroup-perms (lead
 * and v2's cgroup.procs get other modes and owners), cgroup-props
 * (memory.limit_in_bytes and cpu.shares of the settings' cgroups changed).
 */
#include <fcntl.h>
#include <sched.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "testprog.h"

/* A directory or file of the test's cgroups and the mode and owner it is
 * given; "%1" stands for the v2 cgroup, "%2" for the v1 mount. */
static const struct perm {
	const char *path;
	bool dir;
	mode_t mode;
	uid_t uid;
	gid_t gid;
} perms[] = {
	{ "%1", true, 0775, 1000, 1000 },
	{ "%1/cgroup.procs", false, 0664, 1000, 1000 },
	{ "%1/empty", true, 0700, 1001, 1002 },
	{ "%1/empty/nested", true, 0750, 1003, 1003 },
	{ "%2/lead", true, 0777, 1000, 1000 },
	{ "%2/lead/tasks", false, 0666, 1000, 1000 },
	{ "%2/lead/cgroup.procs", false, 0666, 1000, 1000 },
	{ "%2/lead/notify_on_release", false, 0666, 1000, 1000 },
	{ "%2/lead/empty", true, 0700, 1001, 1002 },
	{ "%2/lead/empty/nested", true, 0750, 1003, 1003 },
};

static char v2line[4096], v1lead[4096], v1thr[4096], v1name[256];

/* A setting the test gives its cgroups; the value "=cpus" / "=mems" is
 * the last CPU / first memory node of the hierarchy's root. */
static const struct setting {
	const char *ctrl, *sub, *name, *value;
} settings[] = {
	{ "memory", "", "memory.limit_in_bytes", "268435456" },
	{ "memory", "", "memory.soft_limit_in_bytes", "134217728" },
	{ "memory", "", "memory.swappiness", "30" },
	{ "memory", "/sub", "memory.limit_in_bytes", "67108864" },
	{ "cpu", "", "cpu.shares", "512" },
	{ "cpu", "", "cpu.cfs_quota_us", "50000" },
	{ "cpu", "/sub", "cpu.shares", "256" },
	{ "cpuset", "", "cpuset.cpus", "=cpus" },
	{ "cpuset", "", "cpuset.mems", "=mems" },
	{ "cpuset", "/sub", "cpuset.cpus", "=cpus" },
	{ "cpuset", "/sub", "cpuset.mems", "=mems" },
	{ "pids", "", "pids.max", "1000" },
	{ "pids", "/sub", "pids.max", "50" },
};

/* A hierarchy of the settings: its mount, our cgroup there before the
 * test, the test's cgroup, our /proc line in it. */
static struct pctrl {
	const char *ctrl;
	char mnt[1024], home[1024], dir[2048], line[4096], field[256];
} pctrls[] = { { .ctrl = "memory" }, { .ctrl = "cpu" }, { .ctrl = "cpuset" }, { .ctrl = "pids" } };
static char last_cpu[32], first_mem[32];
static pid_t thr_tid;
static volatile int thr_ready;

static void put(const char *file, long id)
{
	char num[32];
	int fd = open(file, O_WRONLY), n = snprintf(num, sizeof(num), "%ld", id);

	if (fd < 0 || write(fd, num, n) != n)
		tp_die("write %ld to %s", id, file);
	close(fd);
}

/* The line of /proc/self/task/TID/cgroup for the v2 hierarchy (want NULL)
 * or for the v1 hierarchy whose controllers field is want. */
static int cg_line(pid_t tid, const char *want, char *out, size_t len)
{
	char path[64], line[4096];
	FILE *f;
	int found = -1;

	snprintf(path, sizeof(path), "/proc/self/task/%d/cgroup", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (found && fgets(line, sizeof(line), f)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

		line[strcspn(line, "\n")] = 0;
		if (!c2)
			continue;
		if (want ? (size_t)(c2 - c1 - 1) == strlen(want) && !strncmp(c1 + 1, want, c2 - c1 - 1)
			 : !strncmp(line, "0::", 3)) {
			snprintf(out, len, "%s", line);
			found = 0;
		}
	}
	fclose(f);
	return found;
}

/* The v1 mount whose super options hold controller ctrl. */
static bool v1_mount(const char *ctrl, char *mnt, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096], dir[1024], fs[64], sopts[1024];
	bool found = false;

	while (f && !found && fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - ");

		if (!sep || sscanf(line, "%*s %*s %*s %*s %1023s", dir) != 1 ||
		    sscanf(sep + 3, "%63s %*s %1023s", fs, sopts) != 2 || strcmp(fs, "cgroup"))
			continue;
		for (char *save, *o = strtok_r(sopts, ",", &save); o && !found;
		     o = strtok_r(NULL, ",", &save))
			found = !strcmp(o, ctrl);
		if (found)
			snprintf(mnt, len, "%s", dir);
	}
	if (f)
		fclose(f);
	return found;
}

/* The line of /proc/self/cgroup whose controllers field holds ctrl. */
static int ctrl_line(pid_t tid, const char *ctrl, char *line, size_t len, char *field,
		     size_t flen)
{
	char path[64], buf[4096];
	FILE *f;
	int found = -1;

	snprintf(path, sizeof(path), "/proc/self/task/%d/cgroup", (int)tid);
	f = fopen(path, "re");
	while (f && found && fgets(buf, sizeof(buf), f)) {
		char *c1 = strchr(buf, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL, ctl[256];

		buf[strcspn(buf, "\n")] = 0;
		if (!c2 || (size_t)(c2 - c1 - 1) >= sizeof(ctl))
			continue;
		snprintf(ctl, sizeof(ctl), "%.*s", (int)(c2 - c1 - 1), c1 + 1);
		for (char *save, *o = strtok_r(ctl, ",", &save); o && found;
		     o = strtok_r(NULL, ",", &save))
			if (!strcmp(o, ctrl)) {
				snprintf(line, len, "%s", buf);
				snprintf(field, flen, "%.*s", (int)(c2 - c1 - 1), c1 + 1);
				found = 0;
			}
	}
	if (f)
		fclose(f);
	return found;
}

static struct pctrl *pctrl_of(const char *ctrl)
{
	for (size_t i = 0; i < sizeof(pctrls) / sizeof(pctrls[0]); i++)
		if (!strcmp(pctrls[i].ctrl, ctrl) && *pctrls[i].dir)
			return &pctrls[i];
	return NULL;
}

static const char *setting_value(const struct setting *st)
{
	if (!strcmp(st->value, "=cpus"))
		return last_cpu;
	if (!strcmp(st->value, "=mems"))
		return first_mem;
	return st->value;
}

static void read_value(const char *file, char *out, size_t len)
{
	int fd = open(file, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, out, len - 1);

	if (fd >= 0)
		close(fd);
	if (n < 0) {
		snprintf(out, len, "(%s)", strerror(errno));
		return;
	}
	out[n] = 0;
	out[strcspn(out, "\n")] = 0;
}

static void write_value(const char *file, const char *value)
{
	int fd = open(file, O_WRONLY);
	ssize_t n = (ssize_t)strlen(value);

	if (fd < 0 || write(fd, value, n) != n)
		tp_die("write %s to %s", value, file);
	close(fd);
}

/* Make the settings' cgroups, set them, move in. */
static void make_settings(void)
{
	char file[4096], buf[256];

	for (size_t i = 0; i < sizeof(pctrls) / sizeof(pctrls[0]); i++) {
		struct pctrl *c = &pctrls[i];
		char line[4096], field[256];

		if (!v1_mount(c->ctrl, c->mnt, sizeof(c->mnt)) ||
		    ctrl_line(getpid(), c->ctrl, line, sizeof(line), field, sizeof(field)))
			continue;
		snprintf(c->home, sizeof(c->home), "%s", strchr(strchr(line, ':') + 1, ':') + 1);
		snprintf(c->dir, sizeof(c->dir), "%s%s/stasis-props-%d", c->mnt,
			 strcmp(c->home, "/") ? c->home : "", (int)getpid());
		if (mkdir(c->dir, 0755))
			tp_die("mkdir %s", c->dir);
		snprintf(file, sizeof(file), "%s/sub", c->dir);
		if (mkdir(file, 0755))
			tp_die("mkdir %s", file);
		if (!strcmp(c->ctrl, "cpuset")) {
			char *p;

			snprintf(file, sizeof(file), "%s/cpuset.cpus", c->mnt);
			read_value(file, buf, sizeof(buf));
			/* "0-1" or "0,2-3": the last number */
			p = buf + strlen(buf);
			while (p > buf && p[-1] >= '0' && p[-1] <= '9')
				p--;
			snprintf(last_cpu, sizeof(last_cpu), "%.16s", p);
			snprintf(file, sizeof(file), "%s/cpuset.mems", c->mnt);
			read_value(file, buf, sizeof(buf));
			snprintf(first_mem, sizeof(first_mem), "%.*s", (int)strspn(buf, "0123456789"),
				 buf);
		}
	}
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
		const struct setting *st = &settings[i];
		const struct pctrl *c = pctrl_of(st->ctrl);

		if (!c)
			continue;
		snprintf(file, sizeof(file), "%s%s/%s", c->dir, st->sub, st->name);
		write_value(file, setting_value(st));
	}
	for (size_t i = 0; i < sizeof(pctrls) / sizeof(pctrls[0]); i++) {
		struct pctrl *c = &pctrls[i];

		if (!*c->dir)
			continue;
		snprintf(file, sizeof(file), "%s/cgroup.procs", c->dir);
		put(file, getpid());
		if (ctrl_line(getpid(), c->ctrl, c->line, sizeof(c->line), c->field,
			      sizeof(c->field)))
			tp_die("no cgroup line for %s", c->ctrl);
		printf("PROPS %s\n", c->dir);
	}
}

static void check_settings(void)
{
	char file[4096], now[4096], field[256];

	for (size_t i = 0; i < sizeof(pctrls) / sizeof(pctrls[0]); i++) {
		const struct pctrl *c = &pctrls[i];

		if (!*c->dir)
			continue;
		if (ctrl_line(getpid(), c->ctrl, now, sizeof(now), field, sizeof(field)))
			tp_fail("no cgroup line for %s", c->ctrl);
		else if (strcmp(now, c->line))
			tp_fail("%s: in \"%s\", was in \"%s\"", c->ctrl, now, c->line);
	}
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
		const struct setting *st = &settings[i];
		const struct pctrl *c = pctrl_of(st->ctrl);

		if (!c)
			continue;
		snprintf(file, sizeof(file), "%s%s/%s", c->dir, st->sub, st->name);
		read_value(file, now, sizeof(now));
		if (strcmp(now, setting_value(st)))
			tp_fail("%s is \"%s\", was \"%s\"", file, now, setting_value(st));
	}
}

/* Back into our cgroups, the test's removed. */
static void remove_settings(void)
{
	char file[4096];

	for (size_t i = 0; i < sizeof(pctrls) / sizeof(pctrls[0]); i++) {
		const struct pctrl *c = &pctrls[i];

		if (!*c->dir)
			continue;
		snprintf(file, sizeof(file), "%s%s/cgroup.procs", c->mnt,
			 strcmp(c->home, "/") ? c->home : "");
		put(file, getpid());
		snprintf(file, sizeof(file), "%s/sub", c->dir);
		rmdir(file);
		rmdir(c->dir);
	}
}

static void *thread_main(void *arg)
{
	const char *v1 = arg;
	char file[4096];

	thr_tid = (pid_t)syscall(SYS_gettid);
	snprintf(file, sizeof(file), "%s/thr/tasks", v1);
	put(file, thr_tid);
	__atomic_store_n(&thr_ready, 1, __ATOMIC_SEQ_CST);
	for (;;)
		pause();
	return NULL;
}

static void perm_path(const struct perm *p, const char *v2, const char *v1, char *out, size_t len)
{
	snprintf(out, len, "%s%s", p->path[1] == '1' ? v2 : v1, p->path + 2);
}

/* Make the directories of perms (existing ones kept: the v1 hierarchy
 * outlives its mounts) and give everything its mode and owner. */
static void make_perms(const char *v2, const char *v1)
{
	char path[4096];

	for (size_t i = 0; i < sizeof(perms) / sizeof(perms[0]); i++) {
		perm_path(&perms[i], v2, v1, path, sizeof(path));
		if (perms[i].dir && mkdir(path, 0755) && errno != EEXIST)
			tp_die("mkdir %s", path);
		if (chown(path, perms[i].uid, perms[i].gid) || chmod(path, perms[i].mode))
			tp_die("chown/chmod %s", path);
	}
}

static void check_perms(const char *v2, const char *v1)
{
	char path[4096];
	struct stat st;

	for (size_t i = 0; i < sizeof(perms) / sizeof(perms[0]); i++) {
		const struct perm *p = &perms[i];

		perm_path(p, v2, v1, path, sizeof(path));
		if (lstat(path, &st))
			tp_fail("%s: %s", path, strerror(errno));
		else if (p->dir != !!S_ISDIR(st.st_mode))
			tp_fail("%s is %sa directory", path, p->dir ? "not " : "");
		else if ((st.st_mode & 07777) != p->mode || st.st_uid != p->uid ||
			 st.st_gid != p->gid)
			tp_fail("%s: mode %o, owner %u:%u; was mode %o, owner %u:%u", path,
				st.st_mode & 07777, st.st_uid, st.st_gid, p->mode, p->uid, p->gid);
	}
}

/* The directories of perms, deepest first. */
static void remove_dirs(const char *v2, const char *v1)
{
	char path[4096];

	for (size_t i = sizeof(perms) / sizeof(perms[0]); i-- > 0;) {
		if (!perms[i].dir)
			continue;
		perm_path(&perms[i], v2, v1, path, sizeof(path));
		rmdir(path);
	}
}

static void check(pid_t tid, const char *want, const char *expected, const char *what)
{
	char now[4096];

	if (cg_line(tid, want, now, sizeof(now)))
		tp_fail("%s: no cgroup line for %s", what, want ? want : "v2");
	else if (strcmp(now, expected))
		tp_fail("%s: in \"%s\", was in \"%s\"", what, now, expected);
}

/* Where cgroup2 is mounted and the cgroup we are in there. */
static void v2_home(char *mnt, size_t len, char *cur, size_t curlen)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096], dir[1024];

	*mnt = 0;
	while (f && fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - ");

		if (sep && !strncmp(sep + 3, "cgroup2 ", 8) &&
		    sscanf(line, "%*s %*s %*s %*s %1023s", dir) == 1) {
			snprintf(mnt, len, "%s", dir);
			break;
		}
	}
	if (f)
		fclose(f);
	if (!*mnt || cg_line(getpid(), NULL, line, sizeof(line)))
		tp_die("no cgroup2 mount");
	snprintf(cur, curlen, "%.1000s", line + 3);
}

int main(int argc, char **argv)
{
	char file[8192], v2[2048], v1[2048], mnt[1024], home[1024];
	pthread_t th;
	int ret;

	tp_init(argc, argv, 2, "GOFILE DIR");
	v2_home(mnt, sizeof(mnt), home, sizeof(home));
	snprintf(v2, sizeof(v2), "%s/stasis-test-%d", mnt, (int)getpid());
	snprintf(v1, sizeof(v1), "%s/cgv1", argv[2]);
	snprintf(file, sizeof(file), "none,name=stasis-test-%d", (int)getpid());
	if (mkdir(v1, 0755) || mount("none", v1, "cgroup", 0, file))
		tp_die("mount a v1 named hierarchy at %s", v1);
	if (mkdir(v2, 0755))
		tp_die("mkdir %s", v2);
	snprintf(file, sizeof(file), "%s/cgroup.procs", v2);
	put(file, getpid());
	snprintf(file, sizeof(file), "%s/lead", v1);
	if (mkdir(file, 0755) && errno != EEXIST) /* the hierarchy outlives its mounts */
		tp_die("mkdir %s", file);
	snprintf(file, sizeof(file), "%s/thr", v1);
	if (mkdir(file, 0755) && errno != EEXIST) /* the hierarchy outlives its mounts */
		tp_die("mkdir %s", file);
	make_perms(v2, v1);
	snprintf(file, sizeof(file), "%s/lead/tasks", v1);
	put(file, getpid());
	if (pthread_create(&th, NULL, thread_main, (void *)v1))
		tp_die("pthread_create");
	while (!__atomic_load_n(&thr_ready, __ATOMIC_SEQ_CST))
		usleep(1000);
	/* the v1 hierarchy's controllers field: name=... of its lead line */
	{
		FILE *f = fopen("/proc/self/cgroup", "re");
		char line[4096];

		while (f && fgets(line, sizeof(line), f)) {
			char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

			line[strcspn(line, "\n")] = 0;
			if (c2 && !strcmp(c2 + 1, "/lead") && !strncmp(c1 + 1, "name=", 5))
				snprintf(v1name, sizeof(v1name), "%.*s", (int)(c2 - c1 - 1), c1 + 1);
		}
		if (f)
			fclose(f);
	}
	if (!*v1name)
		tp_die("the process is not in %s/lead", v1);
	if (cg_line(getpid(), NULL, v2line, sizeof(v2line)) ||
	    cg_line(getpid(), v1name, v1lead, sizeof(v1lead)) ||
	    cg_line(thr_tid, v1name, v1thr, sizeof(v1thr)))
		tp_die("cannot read the cgroup lines");
	printf("V2 %s\nV1 %s\n", v2, v1);
	make_settings();
	tp_ready();
	tp_wait_go();
	if (tp_sabotaged("cgroup")) {
		snprintf(file, sizeof(file), "%s/tasks", v1);
		put(file, getpid());
	}
	if (tp_sabotaged("cgroup-empty")) {
		snprintf(file, sizeof(file), "%s/empty/nested", v2);
		rmdir(file);
		snprintf(file, sizeof(file), "%s/lead/empty/nested", v1);
		rmdir(file);
	}
	if (tp_sabotaged("cgroup-perms")) {
		snprintf(file, sizeof(file), "%s/lead", v1);
		if (chmod(file, 0755))
			tp_die("chmod %s", file);
		snprintf(file, sizeof(file), "%s/cgroup.procs", v2);
		if (chown(file, 0, 0))
			tp_die("chown %s", file);
	}
	if (tp_sabotaged("cgroup-props")) {
		const struct pctrl *c = pctrl_of("memory");

		if (c) {
			snprintf(file, sizeof(file), "%s/memory.limit_in_bytes", c->dir);
			write_value(file, "536870912");
		}
		c = pctrl_of("cpu");
		if (c) {
			snprintf(file, sizeof(file), "%s/sub/cpu.shares", c->dir);
			write_value(file, "1000");
		}
	}
	check(getpid(), NULL, v2line, "the process (v2)");
	check(getpid(), v1name, v1lead, "the leader (v1)");
	check(thr_tid, v1name, v1thr, "the thread (v1)");
	check_perms(v2, v1);
	check_settings();
	ret = tp_finish();
	/* leave nothing behind */
	snprintf(file, sizeof(file), "%s/tasks", v1);
	put(file, getpid());
	put(file, thr_tid);
	snprintf(file, sizeof(file), "%s%s/cgroup.procs", mnt, strcmp(home, "/") ? home : "");
	put(file, getpid());
	remove_dirs(v2, v1);
	remove_settings();
	snprintf(file, sizeof(file), "%s/thr", v1);
	rmdir(file);
	umount2(v1, MNT_DETACH);
	return ret;
}
