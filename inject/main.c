// SPDX-License-Identifier: GPL-2.0
/*
 * stasis-inject: read a plaintext image stream on stdin and recreate the
 * tree from the outside with ptrace: the task is cloned with its old PID,
 * emptied, refilled with remote system calls, and released with its own
 * registers. Any failure kills what was made; nothing half-restored runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "inject.h"
#include "stasis/log.h"
#include "stasis/util.h"

struct inject_opts opts;

static struct rec *recs;
static size_t nr_recs;

static void usage(FILE *f)
{
	fprintf(f, "Usage: stasis-inject [OPTIONS] < STREAM\n"
		   "Restore the process tree of a plaintext image stream.\n\n"
		   "Options:\n"
		   "  -d, --restore-detached  exit once the tree runs, do not wait for it\n"
		   "  -s, --leave-stopped     leave the restored tree stopped\n"
		   "  -j, --shell-job         give the tree the caller's terminal\n"
		   "      --pidfile FILE      write the restored root's PID to FILE\n"
		   "  -v, --verbosity[=N]     raise or set the log level (0-4)\n"
		   "  -o, --log-file FILE     write log messages to FILE\n"
		   "  -h, --help              show this help and exit\n"
		   "  -V, --version           show the version and exit\n");
}

unsigned records_count(const char *image)
{
	unsigned n = 0;

	for (size_t i = 0; i < nr_recs; i++)
		n += !strcmp(recs[i].image, image);
	return n;
}

void *records_get(const char *image, unsigned idx, const ProtobufCMessageDescriptor *desc)
{
	for (size_t i = 0; i < nr_recs; i++) {
		ProtobufCMessage *m;

		if (strcmp(recs[i].image, image) || idx--)
			continue;
		m = protobuf_c_message_unpack(desc, NULL, recs[i].len, recs[i].data);
		if (!m)
			pr_err("%s: record is malformed (not a %s)", image, desc->name);
		return m;
	}
	return NULL;
}

/* Reads every record up to the first page frame; returns imgr_next's
 * verdict for the frame left in *f (1 pages, 0 end, -1 error). */
static int read_records(struct img_reader *r, struct img_frame *f)
{
	int ret;

	while ((ret = imgr_next(r, f)) > 0) {
		if (f->hdr.kind == FRAME_PAGES)
			return 1;
		if (f->hdr.kind != FRAME_RECORD)
			continue;
		if (nr_recs > 1000000) {
			pr_err("too many records in the checkpoint");
			return -1;
		}
		recs = xrealloc(recs, (nr_recs + 1) * sizeof(*recs));
		recs[nr_recs].image = xstrdup(f->image);
		recs[nr_recs].data = xmalloc(f->hdr.len);
		memcpy(recs[nr_recs].data, f->data, f->hdr.len);
		recs[nr_recs].len = f->hdr.len;
		nr_recs++;
	}
	return ret;
}

#define NEED(var, image, idx, type)                                                            \
	do {                                                                                   \
		var = records_get(image, idx, &type);                                          \
		if (!var) {                                                                    \
			pr_err("the checkpoint lacks %s (record %u)", image, (unsigned)(idx));            \
			return -1;                                                             \
		}                                                                              \
	} while (0)

static int load_task(struct itask *t)
{
	Stasis__Inventory *inv;
	char name[32];

	NEED(inv, "inventory", 0, stasis__inventory__descriptor);
	if (inv->version != STASIS_STREAM_VERSION) {
		pr_err("checkpoint version %u is not supported", inv->version);
		return -1;
	}
	if (inv->shell_job && !opts.shell_job) {
		pr_err("the tree was dumped with --shell-job; restore it with --shell-job");
		return -1;
	}
	if (records_count("pstree") != 1) {
		pr_err("the checkpoint holds %u tasks; trees of processes are not supported yet",
		       records_count("pstree"));
		return -1;
	}
	NEED(t->pe, "pstree", 0, stasis__pstree_entry__descriptor);
	t->pid = t->pe->pid;
	if (t->pid != (pid_t)inv->root_pid || t->pid <= 1) {
		pr_err("the checkpoint's process tree is inconsistent");
		return -1;
	}
	if (!t->pe->n_threads || t->pe->threads[0] != (uint32_t)t->pid ||
	    t->pe->n_threads > 65536) {
		pr_err("task %d: malformed thread list in the checkpoint", t->pid);
		return -1;
	}
	snprintf(name, sizeof(name), "core-%d", t->pid);
	NEED(t->tc, name, 0, stasis__task_core__descriptor);
	t->nr_threads = t->pe->n_threads;
	t->threads = xzalloc(t->nr_threads * sizeof(*t->threads));
	for (size_t i = 0; i < t->nr_threads; i++) {
		NEED(t->threads[i].th, name, i + 1, stasis__thread_core__descriptor);
		if (t->threads[i].th->tid != t->pe->threads[i]) {
			pr_err("task %d: thread %zu of the checkpoint is out of order", t->pid, i);
			return -1;
		}
	}
	t->th = t->threads[0].th;
	t->threads[0].rt = &t->rt;
	snprintf(name, sizeof(name), "mm-%d", t->pid);
	NEED(t->mm, name, 0, stasis__mm_entry__descriptor);
	snprintf(name, sizeof(name), "fs-%d", t->pid);
	NEED(t->fs, name, 0, stasis__fs_entry__descriptor);
	return 0;
}

static int child_stub(void *unused)
{
	(void)unused;
	ptrace(PTRACE_TRACEME, 0, NULL, NULL);
	raise(SIGSTOP);
	_exit(127);
}

/* Clones a stopped tracee with exactly the task's PID. */
static int create_task(struct itask *t)
{
	pid_t tid = t->pid;
	struct clone_args args = {
		.exit_signal = SIGCHLD,
		.set_tid = (uint64_t)(unsigned long)&tid,
		.set_tid_size = 1,
	};
	int status;
	long pid;

	pid = syscall(SYS_clone3, &args, sizeof(args));
	if (pid == 0)
		child_stub(NULL);
	if (pid < 0) {
		if (errno == EEXIST)
			pr_err("cannot restore task %d: its PID is in use", t->pid);
		else
			pr_perror("cannot create task %d", t->pid);
		return -1;
	}
	t->rt.tid = pid;
	if (waitpid(pid, &status, __WALL) != pid || !WIFSTOPPED(status)) {
		pr_err("task %d did not stop after its creation", t->pid);
		return -1;
	}
	/* if stasis-inject dies now, the half-made task must die too */
	if (ptrace(PTRACE_SETOPTIONS, pid, NULL, (void *)(PTRACE_O_EXITKILL | PTRACE_O_TRACECLONE))) {
		pr_perror("cannot set ptrace options on task %d", t->pid);
		return -1;
	}
	return rtask_init(&t->rt, t->pid);
}

static int restore_task(struct itask *t, struct img_reader *r, struct img_frame *f, int more)
{
	uint64_t all = ~0ull;

	if (ptrace(PTRACE_SETSIGMASK, t->pid, (void *)8, &all)) {
		pr_perror("cannot block signals of task %d", t->pid);
		return -1;
	}
	if (parasite_place(t) || mm_prepare(t) || mm_restore_vmas(t) ||
	    mm_restore_pages(t, r, f, more) || mm_finish(t) || fs_restore(t) ||
	    files_restore(t) || core_create_threads(t) || core_restore_attrs(t) ||
	    signals_restore(t))
		return -1;
	for (size_t i = 0; i < t->nr_threads; i++)
		if (core_restore_thread(t, &t->threads[i]))
			return -1;
	if (parasite_remove(t))
		return -1;
	return core_restore_regs(t);
}

static int release_task(struct itask *t)
{
	int sig = opts.leave_stopped ? SIGSTOP : 0;

	for (size_t i = t->nr_threads; i-- > 0;) {
		struct rtask *rt = t->threads[i].rt;

		if (!rt)
			continue;
		rtask_fini(rt);
		if (ptrace(PTRACE_DETACH, rt->tid, NULL, (void *)(long)(i ? 0 : sig))) {
			pr_perror("cannot release task %d", rt->tid);
			return -1;
		}
	}
	return 0;
}

static int write_pidfile(pid_t pid)
{
	FILE *f;

	if (!opts.pidfile)
		return 0;
	f = fopen(opts.pidfile, "we");
	if (!f || fprintf(f, "%d", pid) < 0 || fclose(f)) {
		pr_perror("cannot write pidfile %s", opts.pidfile);
		return -1;
	}
	return 0;
}

static int parse_opts(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "restore-detached", no_argument, NULL, 'd' },
		{ "leave-stopped", no_argument, NULL, 's' },
		{ "shell-job", no_argument, NULL, 'j' },
		{ "pidfile", required_argument, NULL, 'P' },
		{ "verbosity", optional_argument, NULL, 'v' },
		{ "log-file", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{}
	};
	int c, verbosity = LOG_WARN;

	while ((c = getopt_long(argc, argv, "dsjv::o:hV", lopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			opts.detached = true;
			break;
		case 's':
			opts.leave_stopped = true;
			break;
		case 'j':
			opts.shell_job = true;
			break;
		case 'P':
			opts.pidfile = optarg;
			break;
		case 'v':
			if (!optarg)
				verbosity++;
			else if (optarg[0] == 'v')
				verbosity += 1 + strspn(optarg, "v");
			else
				verbosity = atoi(optarg);
			log_set_level(verbosity);
			break;
		case 'o':
			if (log_set_file(optarg)) {
				pr_perror("cannot open log file %s", optarg);
				return -1;
			}
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			print_version("stasis-inject");
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct itask task = { .pid = 0 };
	struct img_reader *r;
	struct img_frame f;
	int more, status;
	uint64_t start = now_ns();

	log_init(argv[0]);
	if (parse_opts(argc, argv))
		return 1;
	r = imgr_open(STDIN_FILENO, "checkpoint stream");
	more = read_records(r, &f);
	if (more < 0 || load_task(&task) || files_prepare(&task))
		return 1;
	if (create_task(&task))
		goto fail;
	files_release_staged();
	if (restore_task(&task, r, &f, more))
		goto fail;
	if (write_pidfile(task.pid))
		goto fail;
	if (release_task(&task))
		goto fail;
	pr_info("restored task %d in %llu ms", task.pid,
		(unsigned long long)(now_ns() - start) / 1000000);
	imgr_free(r);
	if (opts.detached)
		return 0;
	while (waitpid(task.pid, &status, 0) < 0)
		if (errno != EINTR) {
			pr_perror("cannot wait for task %d", task.pid);
			return 1;
		}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
fail:
	if (task.rt.tid > 0) {
		kill(task.pid, SIGKILL);
		waitpid(task.pid, &status, __WALL);
	}
	pr_err("restore failed; nothing was left running");
	return 1;
}
