/* novdso GOFILE
 *
 * A task that unmapped its vDSO (and the vvar pages with it), as programs
 * that replace it do: stasis then finds no `syscall` instruction in a vDSO
 * and must use one from another executable mapping of the task. After GO
 * the task still has no vDSO and its data is intact. (Nothing here may
 * call into the vDSO: no clock_gettime, gettimeofday or time.)
 *
 * Sabotage (STASIS_SABOTAGE=vdso): a vDSO is mapped again before the check.
 */
#include "testprog.h"

#include <asm/prctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#define DATA_LEN (256 * 1024)

static int is_vdso_part(const char *path)
{
	return !strcmp(path, "[vdso]") || !strcmp(path, "[vvar]") || !strcmp(path, "[vvar_vclock]");
}

/* The first vDSO or vvar mapping in /proc/self/maps, or 0. */
static unsigned long vdso_part(unsigned long *end, char *name, size_t len)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512], path[256];
	unsigned long s, e, found = 0;

	if (!f)
		tp_die("open /proc/self/maps");
	while (!found && fgets(line, sizeof(line), f)) {
		path[0] = 0;
		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %255s", &s, &e, path) >= 2 &&
		    is_vdso_part(path)) {
			found = s;
			*end = e;
			snprintf(name, len, "%s", path);
		}
	}
	fclose(f);
	return found;
}

int main(int argc, char **argv)
{
	unsigned long start, end, old = 0;
	unsigned long long *data;
	char name[32];

	tp_init(argc, argv, 1, "GOFILE");
	data = mmap(NULL, DATA_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (data == MAP_FAILED)
		tp_die("mmap");
	for (size_t i = 0; i < DATA_LEN / 8; i++)
		data[i] = tp_pattern(i, 77);
	while ((start = vdso_part(&end, name, sizeof(name)))) {
		if (!old)
			old = start;
		if (syscall(SYS_munmap, start, end - start))
			tp_die("munmap %s", name);
	}
	if (!old)
		tp_die("no vDSO to unmap");

	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("vdso"))
		syscall(SYS_arch_prctl, ARCH_MAP_VDSO_64, old);
	if ((start = vdso_part(&end, name, sizeof(name))))
		tp_fail("%s is mapped at %#lx", name, start);
	for (size_t i = 0; i < DATA_LEN / 8; i++)
		if (data[i] != tp_pattern(i, 77)) {
			tp_fail("data differs at word %zu", i);
			break;
		}
	return tp_finish();
}
