/* mmstate GOFILE
 *
 * The state of mappings beyond their contents, each region with data in it
 * and its own mapping:
 *  - madvise advice: MADV_DONTFORK, MADV_WIPEONFORK, MADV_HUGEPAGE,
 *    MADV_NOHUGEPAGE, MADV_DONTDUMP, MADV_RANDOM, MADV_SEQUENTIAL and
 *    MADV_MERGEABLE (where the kernel has KSM), as smaps VmFlags show it;
 *  - a region locked with mlock ("lo");
 *  - MAP_NORESERVE ("nr") and MAP_DROPPABLE ("dp", its contents may be gone
 *    but it is still droppable and usable);
 *  - a region sealed with mseal ("sl", munmap fails with EPERM), and no
 *    other region sealed;
 *  - guard regions (MADV_GUARD_INSTALL): a store into a guard page faults,
 *    the pages around them keep their data, pagemap marks exactly them;
 *  - membarrier registrations (MEMBARRIER_CMD_GET_REGISTRATIONS): private
 *    expedited ones in the parent, the global expedited one added in the
 *    child;
 *  - a forked child that inherited the guarded region and the others: it
 *    checks that its guards still fault, that the MADV_DONTFORK region is
 *    not mapped in it and that its MADV_WIPEONFORK region is empty.
 *
 * Sabotage (STASIS_SABOTAGE): "advice" turns MADV_HUGEPAGE into
 * MADV_NOHUGEPAGE, "mlock" unlocks the locked region, "guard" removes the
 * guards (parent and child), "membarrier" registers one more command,
 * "seal" seals the MADV_RANDOM region too.
 */
#include "testprog.h"

#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#define MADV_GUARD_REMOVE 103
#endif
#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08
#endif

#define MB_REGISTER_GLOBAL_EXPEDITED (1 << 2)
#define MB_PRIVATE_EXPEDITED (1 << 3)
#define MB_REGISTER_PRIVATE_EXPEDITED (1 << 4)
#define MB_REGISTER_PRIVATE_EXPEDITED_RSEQ (1 << 8)
#define MB_GET_REGISTRATIONS (1 << 9)

#define SYS_MSEAL 462

#define PAGES 8
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define PM_GUARD (1ull << 58)

static long pg;

struct region {
	const char *what;
	int advice; /* -1: none */
	const char *flag; /* the VmFlags mnemonic it must show */
	unsigned char *mem;
	int skip;
};

static struct region regions[] = {
	{ .what = "MADV_DONTFORK", .advice = MADV_DONTFORK, .flag = "dc" },
	{ .what = "MADV_WIPEONFORK", .advice = MADV_WIPEONFORK, .flag = "wf" },
	{ .what = "MADV_HUGEPAGE", .advice = MADV_HUGEPAGE, .flag = "hg" },
	{ .what = "MADV_NOHUGEPAGE", .advice = MADV_NOHUGEPAGE, .flag = "nh" },
	{ .what = "MADV_DONTDUMP", .advice = MADV_DONTDUMP, .flag = "dd" },
	{ .what = "MADV_RANDOM", .advice = MADV_RANDOM, .flag = "rr" },
	{ .what = "MADV_SEQUENTIAL", .advice = MADV_SEQUENTIAL, .flag = "sr" },
	{ .what = "MADV_MERGEABLE", .advice = MADV_MERGEABLE, .flag = "mg" },
	{ .what = "mlock", .advice = -1, .flag = "lo" },
	{ .what = "MAP_NORESERVE", .advice = -1, .flag = "nr" },
	{ .what = "MAP_DROPPABLE", .advice = -1, .flag = "dp" },
	{ .what = "mseal", .advice = -1, .flag = "sl" },
};

enum { R_DONTFORK, R_WIPEONFORK, R_HUGEPAGE, R_RANDOM = 5, R_LOCKED = 8, R_NORESERVE, R_DROPPABLE,
       R_SEALED };

static unsigned char *guarded;
static const int guard_page[PAGES] = { 0, 0, 1, 1, 0, 0, 1, 0 };

static unsigned char pat(int region, long off)
{
	return (unsigned char)(region * 31 + off * 7 + (off >> 12) * 13 + 1);
}

/* The VmFlags line of the mapping holding addr, from /proc/self/smaps. */
static int vmflags_of(const void *addr, char *out, size_t len)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[1024];
	int in = 0, ret = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;

		if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			in = (unsigned long)addr >= s && (unsigned long)addr < e;
			continue;
		}
		if (in && !strncmp(line, "VmFlags:", 8)) {
			snprintf(out, len, "%s", line + 8);
			out[strcspn(out, "\n")] = 0;
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

static int has_flag(const char *flags, const char *flag)
{
	for (const char *p = flags; (p = strstr(p, flag)); p += 2)
		if ((p == flags || p[-1] == ' ') && (p[2] == ' ' || !p[2]))
			return 1;
	return 0;
}

static sigjmp_buf fault_jmp;

static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(fault_jmp, 1);
}

/* Whether a store at p faults (the byte is put back when it does not). */
static int store_faults(volatile unsigned char *p)
{
	struct sigaction sa = { .sa_handler = on_segv }, old;
	int faulted;

	sigaction(SIGSEGV, &sa, &old);
	if (!(faulted = sigsetjmp(fault_jmp, 1))) {
		unsigned char c = *p;
		*p = c;
	}
	sigaction(SIGSEGV, &old, NULL);
	return faulted;
}

static int pagemap_guard(const void *addr)
{
	FILE *f = fopen("/proc/self/pagemap", "re");
	unsigned long long pme = 0;

	if (!f)
		return -1;
	if (fseek(f, (unsigned long)addr / pg * 8, SEEK_SET) || fread(&pme, 8, 1, f) != 1)
		pme = 0;
	fclose(f);
	return !!(pme & PM_GUARD);
}

static void check_guards(const char *who)
{
	for (int i = 0; i < PAGES; i++) {
		unsigned char *p = guarded + i * pg;
		int g = pagemap_guard(p);

		if (store_faults(p) != guard_page[i])
			tp_fail("%s: guarded region page %d %s", who, i,
				guard_page[i] ? "no longer faults" : "faults");
		if (g != guard_page[i])
			tp_fail("%s: pagemap guard bit of page %d is %d, expected %d", who, i, g,
				guard_page[i]);
		if (guard_page[i])
			continue;
		for (long j = 0; j < pg; j++)
			if (p[j] != pat(99, i * pg + j)) {
				tp_fail("%s: guarded region page %d: data differs at +%ld", who, i, j);
				break;
			}
	}
}

static long membarrier(int cmd)
{
	return syscall(SYS_membarrier, cmd, 0, 0);
}

/* The registrations must be exactly want, and private expedited barriers
 * must work where registered. */
static void check_membarrier(const char *who, long want)
{
	long now = membarrier(MB_GET_REGISTRATIONS);

	if (now != want)
		tp_fail("%s: membarrier registrations %#lx, expected %#lx", who, now, want);
	if ((want & MB_REGISTER_PRIVATE_EXPEDITED) && membarrier(MB_PRIVATE_EXPEDITED))
		tp_fail("%s: MEMBARRIER_CMD_PRIVATE_EXPEDITED: %s", who, strerror(errno));
}

static long registered; /* what the task registered itself */

/* The child: its view of what fork gave it. */
static int child(void)
{
	char flags[512];

	tp_nfail = 0;
	tp_faillen = 0;
	/* fork passes the parent's registrations on; one more of its own */
	if (membarrier(MB_REGISTER_GLOBAL_EXPEDITED) == 0)
		registered |= MB_REGISTER_GLOBAL_EXPEDITED;
	tp_wait_go();
	check_membarrier("child", registered);
	if (tp_sabotaged("guard"))
		madvise(guarded, PAGES * pg, MADV_GUARD_REMOVE);
	check_guards("child");
	if (!vmflags_of(regions[R_DONTFORK].mem, flags, sizeof(flags)))
		tp_fail("child: the MADV_DONTFORK region is mapped in it");
	for (long j = 0; j < PAGES * pg; j++)
		if (regions[R_WIPEONFORK].mem[j]) {
			tp_fail("child: the MADV_WIPEONFORK region is not empty at +%ld", j);
			break;
		}
	if (tp_nfail)
		printf("FAIL (child): %s\n", tp_fails);
	fflush(stdout);
	_exit(tp_nfail ? 1 : 0);
}

int main(int argc, char **argv)
{
	char flags[512];
	pid_t pid;
	int status;

	tp_init(argc, argv, 1, "GOFILE");
	pg = sysconf(_SC_PAGESIZE);

	for (size_t r = 0; r < ARRAY_SIZE(regions); r++) {
		struct region *rg = &regions[r];
		int mflags = MAP_PRIVATE | MAP_ANONYMOUS;

		if (r == R_NORESERVE)
			mflags |= MAP_NORESERVE;
		if (r == R_DROPPABLE)
			mflags = MAP_DROPPABLE | MAP_ANONYMOUS;
		rg->mem = mmap(NULL, PAGES * pg, PROT_READ | PROT_WRITE, mflags, -1, 0);
		if (rg->mem == MAP_FAILED)
			tp_die("mmap for %s", rg->what);
		for (long j = 0; j < PAGES * pg; j++)
			rg->mem[j] = pat(r, j);
		if (rg->advice >= 0 && madvise(rg->mem, PAGES * pg, rg->advice)) {
			/* KSM or THP compiled out: nothing to keep */
			if (errno != EINVAL)
				tp_die("madvise %s", rg->what);
			rg->skip = 1;
		}
		if (r == R_LOCKED && mlock(rg->mem, PAGES * pg))
			tp_die("mlock");
		if (r == R_SEALED && syscall(SYS_MSEAL, rg->mem, PAGES * pg, 0)) {
			if (errno != ENOSYS)
				tp_die("mseal");
			rg->skip = 1;
		}
	}
	guarded = mmap(NULL, PAGES * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (guarded == MAP_FAILED)
		tp_die("mmap for guards");
	for (long j = 0; j < PAGES * pg; j++)
		guarded[j] = pat(99, j);
	for (int i = 0; i < PAGES; i++)
		if (guard_page[i] && madvise(guarded + i * pg, pg, MADV_GUARD_INSTALL))
			tp_die("MADV_GUARD_INSTALL");

	if (membarrier(MB_REGISTER_PRIVATE_EXPEDITED))
		tp_die("MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED");
	registered = MB_REGISTER_PRIVATE_EXPEDITED;
	if (membarrier(MB_REGISTER_PRIVATE_EXPEDITED_RSEQ) == 0)
		registered |= MB_REGISTER_PRIVATE_EXPEDITED_RSEQ;

	pid = fork();
	if (pid < 0)
		tp_die("fork");
	if (pid == 0)
		child();

	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("advice"))
		madvise(regions[R_HUGEPAGE].mem, PAGES * pg, MADV_NOHUGEPAGE);
	if (tp_sabotaged("mlock"))
		munlock(regions[R_LOCKED].mem, PAGES * pg);
	if (tp_sabotaged("guard"))
		madvise(guarded, PAGES * pg, MADV_GUARD_REMOVE);
	if (tp_sabotaged("membarrier"))
		membarrier(MB_REGISTER_GLOBAL_EXPEDITED);
	if (tp_sabotaged("seal"))
		syscall(SYS_MSEAL, regions[R_RANDOM].mem, PAGES * pg, 0);

	check_membarrier("parent", registered);
	for (size_t r = 0; r < ARRAY_SIZE(regions); r++) {
		struct region *rg = &regions[r];

		if (rg->skip)
			continue;
		if (vmflags_of(rg->mem, flags, sizeof(flags))) {
			tp_fail("%s: no mapping at %p", rg->what, (void *)rg->mem);
			continue;
		}
		if (!has_flag(flags, rg->flag))
			tp_fail("%s: VmFlags '%s' lack '%s'", rg->what, flags, rg->flag);
		/* sealed exactly where it was */
		if (r != R_SEALED && has_flag(flags, "sl"))
			tp_fail("%s: VmFlags '%s' say sealed", rg->what, flags);
		/* droppable memory may have been emptied; the rest keeps its data */
		for (long j = 0; j < PAGES * pg; j++)
			if (rg->mem[j] != pat(r, j) && !(r == R_DROPPABLE && !rg->mem[j])) {
				tp_fail("%s: data differs at +%ld", rg->what, j);
				break;
			}
	}
	check_guards("parent");
	if (!regions[R_SEALED].skip && (munmap(regions[R_SEALED].mem, pg) == 0 || errno != EPERM))
		tp_fail("mseal: the sealed region could be unmapped");

	if (waitpid(pid, &status, 0) != pid)
		tp_fail("waitpid: %s", strerror(errno));
	else if (!WIFEXITED(status) || WEXITSTATUS(status))
		tp_fail("the child reports a difference (status %#x)", status);
	return tp_finish();
}
