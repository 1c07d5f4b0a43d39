// SPDX-License-Identifier: GPL-2.0
/*
 * Test helper: writes a small, made-up checkpoint as an image stream on
 * stdout, in the canonical order in which stasis-serialize pack streams a
 * directory (so that unpack + pack must give the same bytes back).
 *
 *   stasis-test-mkstream [-p KIB] [-e] [-x] [-m DIR]
 *     -p KIB  size of pages-1 (default 600 KiB)
 *     -e      add empty images (timers-1234 without records, pages-2
 *             without data)
 *     -x      add stats-unknown, an image of a type the schema does not know
 *     -m DIR  put the task in a mount namespace with a tmpfs at DIR/t whose
 *             files lead out of it: a symlink "esc" to DIR/outside, then a
 *             file "esc/pwned" (a hostile checkpoint: the restore must
 *             refuse it and write nothing outside)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/util.h"
#include "stasis-image/image.h"

#define PID 1234

static struct img_writer *w;

static void rec(const char *image, const void *msg)
{
	if (imgw_record(w, image, msg))
		exit(1);
}

static void thread(uint32_t tid, const char *comm)
{
	Stasis__ThreadCore tc = STASIS__THREAD_CORE__INIT;
	Stasis__UserRegs regs = STASIS__USER_REGS__INIT;
	Stasis__RseqConfig rseq = STASIS__RSEQ_CONFIG__INIT;
	static uint8_t xsave[64];

	for (size_t i = 0; i < sizeof(xsave); i++)
		xsave[i] = i;
	regs.rip = 0x401000 + tid;
	regs.rsp = 0x7ffc00000000ull;
	regs.rax = 0xffffffffffffffdaull; /* -ERESTARTSYS as an unsigned value */
	regs.cs = 0x33;
	regs.ss = 0x2b;
	regs.eflags = 0x246;
	rseq.ptr = 0x7f0000001000ull + tid;
	rseq.len = 32;
	rseq.signature = 0x53053053;
	tc.tid = tid;
	tc.regs = &regs;
	tc.has_xsave = 1;
	tc.xsave.len = sizeof(xsave);
	tc.xsave.data = xsave;
	tc.sigmask = 1ull << 9;
	tc.comm = (char *)comm;
	tc.rseq = &rseq;
	rec("core-1234", &tc);
}

static void escaping_mntns(const char *dir)
{
	static char mp[4096], target[4096];
	Stasis__NsEntry ns = STASIS__NS_ENTRY__INIT;
	Stasis__MntEntry m = STASIS__MNT_ENTRY__INIT, *ms[] = { &m };
	Stasis__MntFile root = STASIS__MNT_FILE__INIT, esc = STASIS__MNT_FILE__INIT,
			pwned = STASIS__MNT_FILE__INIT;
	Stasis__DataChunk c = STASIS__DATA_CHUNK__INIT;

	snprintf(mp, sizeof(mp), "%s/t", dir);
	snprintf(target, sizeof(target), "%s/outside", dir);
	m.id = 100;
	m.mountpoint = mp;
	m.fstype = m.source = "tmpfs";
	m.root = "/";
	m.has_has_files = m.has_files = 1;
	ns.id = 1;
	ns.kind = STASIS__NS_KIND__NS_MNT;
	ns.n_mounts = 1;
	ns.mounts = ms;
	rec("ns", &ns);
	root.id = 1;
	root.ns = 1;
	root.mount = 100;
	root.path = "";
	root.mode = 040755;
	esc = root;
	esc.id = 2;
	esc.path = "esc";
	esc.mode = 0120777;
	esc.symlink = target;
	pwned = root;
	pwned.id = 3;
	pwned.path = "esc/pwned";
	pwned.mode = 0100644;
	pwned.has_size = 1;
	pwned.size = 3;
	rec("mnt-files", &root);
	rec("mnt-files", &esc);
	rec("mnt-files", &pwned);
	c.id = 3;
	c.data.data = (uint8_t *)"bad";
	c.data.len = 3;
	rec("mnt-data", &c);
}

int main(int argc, char **argv)
{
	size_t pages_kib = 600;
	bool empty = false, extra = false;
	const char *mnt_dir = NULL;
	int opt;

	log_init(argv[0]);
	while ((opt = getopt(argc, argv, "p:exm:")) != -1) {
		switch (opt) {
		case 'p':
			pages_kib = strtoul(optarg, NULL, 10);
			break;
		case 'e':
			empty = true;
			break;
		case 'x':
			extra = true;
			break;
		case 'm':
			mnt_dir = optarg;
			break;
		default:
			fprintf(stderr, "usage: %s [-p KIB] [-e] [-x] [-m DIR]\n", argv[0]);
			return 2;
		}
	}
	w = imgw_open(1);

	Stasis__Inventory inv = STASIS__INVENTORY__INIT;
	inv.version = 1;
	inv.root_pid = PID;
	inv.has_shell_job = 1;
	inv.shell_job = 0;
	inv.kernel = "6.1.0-test";
	inv.hostname = "stasis-test";
	inv.has_dump_time_ns = 1;
	inv.dump_time_ns = 18446744073709551615ull; /* largest uint64 */
	inv.has_page_size = 1;
	inv.page_size = 4096;
	inv.has_pages_images = 1;
	inv.pages_images = empty ? 2 : 1;
	rec("inventory", &inv);

	uint32_t threads[] = { PID, PID + 1 };
	Stasis__PstreeEntry ps = STASIS__PSTREE_ENTRY__INIT;
	ps.pid = PID;
	ps.ppid = 1;
	ps.pgid = PID;
	ps.sid = PID;
	ps.n_threads = 2;
	ps.threads = threads;
	ps.has_mnt_ns = mnt_dir != NULL;
	ps.mnt_ns = 1;
	rec("pstree", &ps);
	if (mnt_dir)
		escaping_mntns(mnt_dir);

	Stasis__TaskCore task = STASIS__TASK_CORE__INIT;
	Stasis__SigAction sa = STASIS__SIG_ACTION__INIT, *sas[] = { &sa };
	Stasis__Rlimit rl = STASIS__RLIMIT__INIT, *rls[] = { &rl };
	uint8_t siginfo[128] = { 10 };
	ProtobufCBinaryData pending = { sizeof(siginfo), siginfo };
	sa.sig = 10;
	sa.handler = 0x401500;
	sa.flags = 0x04000000;
	sa.restorer = 0x7f0000002000ull;
	sa.mask = 0;
	rl.resource = 7;
	rl.cur = 1024;
	rl.max = 4096;
	task.pid = PID;
	task.n_sigactions = 1;
	task.sigactions = sas;
	task.n_rlimits = 1;
	task.rlimits = rls;
	task.n_shared_pending = 1;
	task.shared_pending = &pending;
	task.comm = "mkstream";
	task.has_pdeath_sig = 1;
	task.pdeath_sig = -1;
	rec("core-1234", &task);
	thread(PID, "mkstream");
	thread(PID + 1, "w\"ork\\er\t\xc3\xa9\xff");

	Stasis__FdinfoEntry fdi = STASIS__FDINFO_ENTRY__INIT;
	fdi.fd = 0;
	fdi.id = 1;
	fdi.cloexec = 0;
	rec("fdinfo-1234", &fdi);

	Stasis__FileEntry fe = STASIS__FILE_ENTRY__INIT;
	fe.id = 1;
	fe.type = STASIS__FD_TYPE__TTY;
	fe.path = "/dev/pts/0";
	fe.flags = 02;
	rec("files", &fe);

	Stasis__FsEntry fs = STASIS__FS_ENTRY__INIT;
	fs.cwd = "/";
	fs.root = "/";
	fs.umask = 022;
	rec("fs-1234", &fs);

	Stasis__MmEntry mm = STASIS__MM_ENTRY__INIT;
	Stasis__Vma v1 = STASIS__VMA__INIT, v2 = STASIS__VMA__INIT, *vmas[] = { &v1, &v2 };
	uint64_t auxv[] = { 6, 4096, 0, 0 };
	v1.start = 0x400000;
	v1.end = 0x401000;
	v1.prot = 5;
	v1.flags = 2;
	v1.kind = STASIS__VMA_KIND__FILE;
	v1.path = "/usr/bin/mkstream";
	v2.start = 0x7f0000000000ull;
	v2.end = v2.start + pages_kib * 1024;
	v2.prot = 3;
	v2.flags = 0x22;
	v2.kind = STASIS__VMA_KIND__ANON;
	mm.brk = 0x600000;
	mm.n_auxv = 4;
	mm.auxv = auxv;
	mm.exe = "/usr/bin/mkstream";
	mm.n_vmas = 2;
	mm.vmas = vmas;
	rec("mm-1234", &mm);

	Stasis__PagemapHead ph = STASIS__PAGEMAP_HEAD__INIT;
	Stasis__PagemapEntry pe = STASIS__PAGEMAP_ENTRY__INIT;
	ph.pages_id = 1;
	pe.vaddr = 0x7f0000000000ull;
	pe.nr_pages = pages_kib / 4;
	rec("pagemap-1234", &ph);
	rec("pagemap-1234", &pe);

	if (empty) {
		/* an image declared with no record at all */
		struct img_frame f = { .hdr = { .kind = FRAME_IMAGE }, .image = "timers-1234" };

		if (imgw_frame(w, &f))
			return 1;
	}

	size_t len = pages_kib * 1024;
	uint8_t *pages = xmalloc(len ? len : 1);
	for (size_t i = 0; i < len; i++)
		pages[i] = (uint8_t)(i * 7 + i / 4096);
	/* in uneven pieces: frames must still split at the same offsets */
	for (size_t off = 0, piece = 12288; off < len; off += piece)
		if (imgw_pages(w, "pages-1", pages + off, piece < len - off ? piece : len - off))
			return 1;
	free(pages);
	if (empty && imgw_pages(w, "pages-2", NULL, 0))
		return 1;

	if (extra && imgw_record_raw(w, "stats-unknown", "\x08\x01\x12\x02hi", 6))
		return 1;

	if (imgw_finish(w))
		return 1;
	imgw_free(w);
	return 0;
}
