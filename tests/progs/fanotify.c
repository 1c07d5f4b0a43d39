/* fanotify GOFILE DIR
 *
 * Two fanotify groups:
 *   A (FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY | O_LARGEFILE events): an
 *     inode mark on DIR/file (FAN_MODIFY | FAN_OPEN | FAN_CLOSE) and a mount
 *     mark on DIR's mount with only an ignored mask (FAN_ACCESS,
 *     FAN_MARK_IGNORED_SURV_MODIFY);
 *   B (FAN_REPORT_FID | FAN_CLOEXEC): an inode mark on DIR (FAN_CREATE |
 *     FAN_ONDIR) and a filesystem mark on DIR's filesystem
 *     (FAN_DELETE_SELF).
 * After GO: the groups' fdinfo (init flags, every mark with its masks and
 * flags) reads as before; a write to DIR/file is reported to A with our
 * PID, creating DIR/new is reported to B.
 */
#include "testprog.h"

#include <fcntl.h>
#include <stdbool.h>
#include <sys/fanotify.h>
#include <sys/stat.h>

static int ga, gb;

/* The "flags:" line and the "fanotify ..." lines of fd's fdinfo. */
static void fdinfo_of(int fd, char *out, size_t n)
{
	char path[64], line[512];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	out[0] = 0;
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "flags:", 6) || !strncmp(line, "fanotify", 8))
			strncat(out, line, n - strlen(out) - 1);
	fclose(f);
}

int main(int argc, char **argv)
{
	char file[4096], newf[4096], before_a[4096], before_b[4096], now[4096];
	char buf[8192] __attribute__((aligned(8)));
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	bool modify = false, create = false;
	int fd;

	tp_init(argc, argv, 2, "GOFILE DIR");
	snprintf(file, sizeof(file), "%s/file", argv[2]);
	snprintf(newf, sizeof(newf), "%s/new", argv[2]);
	fd = open(file, O_CREAT | O_RDWR | O_TRUNC, 0644);
	if (fd < 0 || close(fd))
		tp_die("create %s", file);
	ga = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY | O_LARGEFILE);
	gb = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_FID | FAN_CLOEXEC | FAN_NONBLOCK,
			   O_RDONLY);
	if (ga < 0 || gb < 0)
		tp_die("fanotify_init");
	if (fanotify_mark(ga, FAN_MARK_ADD, FAN_MODIFY | FAN_OPEN | FAN_CLOSE, AT_FDCWD, file) ||
	    fanotify_mark(ga,
			  FAN_MARK_ADD | FAN_MARK_MOUNT | FAN_MARK_IGNORED_MASK |
				  FAN_MARK_IGNORED_SURV_MODIFY,
			  FAN_ACCESS, AT_FDCWD, argv[2]) ||
	    fanotify_mark(gb, FAN_MARK_ADD, FAN_CREATE | FAN_ONDIR, AT_FDCWD, argv[2]) ||
	    fanotify_mark(gb, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_DELETE_SELF, AT_FDCWD,
			  argv[2]))
		tp_die("fanotify_mark");
	fdinfo_of(ga, before_a, sizeof(before_a));
	fdinfo_of(gb, before_b, sizeof(before_b));
	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("fanotify"))
		fanotify_mark(ga, FAN_MARK_REMOVE, FAN_MODIFY | FAN_OPEN | FAN_CLOSE, AT_FDCWD, file);
	fdinfo_of(ga, now, sizeof(now));
	if (strcmp(now, before_a))
		tp_fail("group A's fdinfo is '%s', was '%s'", now, before_a);
	fdinfo_of(gb, now, sizeof(now));
	if (strcmp(now, before_b))
		tp_fail("group B's fdinfo is '%s', was '%s'", now, before_b);
	/* what was queued before is not carried: start from an empty queue */
	while (read(ga, buf, sizeof(buf)) > 0)
		;
	while (read(gb, buf, sizeof(buf)) > 0)
		;
	fd = open(file, O_WRONLY);
	if (fd < 0 || write(fd, "x", 1) != 1 || close(fd))
		tp_fail("write %s: %s", file, strerror(errno));
	fd = open(newf, O_CREAT | O_WRONLY, 0644);
	if (fd < 0 || close(fd))
		tp_fail("create %s: %s", newf, strerror(errno));
	for (int i = 0; i < 200 && !(modify && create); i++) {
		ssize_t n;

		while ((n = read(ga, buf, sizeof(buf))) > 0)
			for (struct fanotify_event_metadata *m = (void *)buf; FAN_EVENT_OK(m, n);
			     m = FAN_EVENT_NEXT(m, n)) {
				modify |= (m->mask & FAN_MODIFY) && m->pid == getpid();
				if (m->fd >= 0)
					close(m->fd);
			}
		while ((n = read(gb, buf, sizeof(buf))) > 0)
			for (struct fanotify_event_metadata *m = (void *)buf; FAN_EVENT_OK(m, n);
			     m = FAN_EVENT_NEXT(m, n))
				create |= (m->mask & FAN_CREATE) && m->pid == getpid();
		if (!(modify && create))
			nanosleep(&ts, NULL);
	}
	if (!modify)
		tp_fail("group A did not report the write to %s", file);
	if (!create)
		tp_fail("group B did not report the creation of %s", newf);
	unlink(newf);
	return tp_finish();
}
