/* memfdexec GOFILE
 *
 * A memfd holding a script ("#!/bin/true"), as memfd_create made it
 * (read-write), mapped shared read-write through that descriptor and
 * privately through a read-only open of /proc/self/fd/N. Executing it
 * (execveat with AT_EMPTY_PATH in a forked child) works only while no
 * descriptor or mapping counts as a writer of the inode (ETXTBSY): a
 * restore that reopens the memfd for writing breaks it. After GO the
 * program runs it again and checks both mappings and the descriptor flags.
 *
 * Sabotage (STASIS_SABOTAGE=writer): opens the memfd for writing first.
 */
#include "testprog.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static const char script[] = "#!/bin/true\n";

/* 0 when the memfd runs and exits 0; else errno of execveat or -1. */
static int exec_memfd(int fd)
{
	char *const argv[] = { "true", NULL }, *const envp[] = { NULL };
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
		_exit(100 + errno);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status) >= 100 ? WEXITSTATUS(status) - 100 : WEXITSTATUS(status) ? -1 : 0;
}

int main(int argc, char **argv)
{
	char path[64], *shared, *priv;
	long pg = sysconf(_SC_PAGESIZE);
	int fd, rofd, e;

	tp_init(argc, argv, 1, "GOFILE");
	fd = syscall(SYS_memfd_create, "script", 0);
	if (fd < 0 || write(fd, script, sizeof(script) - 1) != sizeof(script) - 1)
		tp_die("memfd_create");
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	rofd = open(path, O_RDONLY);
	if (rofd < 0)
		tp_die("open %s", path);
	shared = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	priv = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, rofd, 0);
	if (shared == MAP_FAILED || priv == MAP_FAILED)
		tp_die("mmap");
	priv[0] = '#'; /* its own copy, same byte */
	if ((e = exec_memfd(fd)))
		tp_die("execveat before the dump: %s", e > 0 ? strerror(e) : "failed");

	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("writer") && open(path, O_RDWR) < 0)
		tp_fail("sabotage: open %s: %s", path, strerror(errno));
	if ((e = exec_memfd(fd)))
		tp_fail("execveat of the memfd: %s", e > 0 ? strerror(e) : "failed");
	if (memcmp(shared, script, sizeof(script) - 1) || memcmp(priv, script, sizeof(script) - 1))
		tp_fail("the mappings do not show the script");
	if ((fcntl(fd, F_GETFL) & O_ACCMODE) != O_RDWR ||
	    (fcntl(rofd, F_GETFL) & O_ACCMODE) != O_RDONLY)
		tp_fail("access modes: fd %#x, read-only fd %#x", fcntl(fd, F_GETFL),
			fcntl(rofd, F_GETFL));
	/* still one object: a store through the mapping is read back */
	shared[2] = 'X';
	if (pread(rofd, path, 1, 2) != 1 || path[0] != 'X')
		tp_fail("the shared mapping is not the memfd's");
	shared[2] = script[2];
	return tp_finish();
}
