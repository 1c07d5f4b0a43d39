/* fpu GOFILE [avx2|avx512]
 *
 * Register state across a checkpoint: known values in the vector registers
 * (ymm0-15; with AVX-512, which is the default when the CPU has it, all of
 * zmm0-31 and the opmask registers k0-7), eight values on the x87 stack, a
 * non-default x87 control word and MXCSR (rounding mode, FTZ, DAZ, sticky
 * flags), and general registers (rbx, r8, r9, r12-r15).
 *
 * The registers are loaded, READY is written and GOFILE is polled all in
 * assembly (raw nanosleep/access system calls, which preserve every register
 * but rax, rcx and r11), so no compiler or libc code can disturb them; the
 * values are stored back and compared only after GO.
 */
#include "testprog.h"

#include <stdint.h>

struct fpstate {
	uint8_t zmm[32][64]; /*    0 */
	uint64_t k[8];       /* 2048 */
	uint8_t st[8][16];   /* 2112: 80-bit values, 16-byte slots */
	uint32_t mxcsr;      /* 2240 */
	uint16_t fcw;        /* 2244 */
	uint16_t pad;        /* 2246 */
	uint64_t gpr[7];     /* 2248: rbx r8 r9 r12 r13 r14 r15 */
};
_Static_assert(sizeof(struct fpstate) == 2304, "fpstate layout");

static const char *const gpr_names[7] = { "rbx", "r8", "r9", "r12", "r13", "r14", "r15" };

void fpu_run_avx2(const struct fpstate *in, struct fpstate *out, const char *gofile);
void fpu_run_avx512(const struct fpstate *in, struct fpstate *out, const char *gofile);

/* SysV ABI: in = rdi, out = rsi, gofile = rdx. */
__asm__(
	".pushsection .rodata\n"
	"fpu_ready_msg: .ascii \"READY\\n\"\n"
	".popsection\n"

	".macro FPU_PROLOGUE\n"
	"  push %rbp\n push %rbx\n push %r12\n push %r13\n push %r14\n push %r15\n"
	"  sub $56, %rsp\n"
	"  mov %rsi, 0(%rsp)\n"	       /* out */
	"  mov %rdx, 8(%rsp)\n"	       /* gofile */
	"  movq $0, 16(%rsp)\n"	       /* timespec: 0 s */
	"  movq $10000000, 24(%rsp)\n" /* 10 ms */
	"  stmxcsr 32(%rsp)\n"
	"  fnstcw 36(%rsp)\n"
	"  mov %rdi, %rbp\n"
	".endm\n"

	".macro FPU_LOAD_COMMON\n"
	"  .irp i,0,1,2,3,4,5,6,7\n"
	"  fldt 2112+\\i*16(%rbp)\n"
	"  .endr\n"
	"  fldcw 2244(%rbp)\n"
	"  ldmxcsr 2240(%rbp)\n"
	"  mov 2248(%rbp), %rbx\n mov 2256(%rbp), %r8\n mov 2264(%rbp), %r9\n"
	"  mov 2272(%rbp), %r12\n mov 2280(%rbp), %r13\n mov 2288(%rbp), %r14\n"
	"  mov 2296(%rbp), %r15\n"
	".endm\n"

	".macro FPU_WAIT\n"
	"  mov $1, %eax\n mov $1, %edi\n lea fpu_ready_msg(%rip), %rsi\n mov $6, %edx\n syscall\n"
	"1:\n"
	"  mov $35, %eax\n lea 16(%rsp), %rdi\n xor %esi, %esi\n syscall\n" /* nanosleep */
	"  mov $21, %eax\n mov 8(%rsp), %rdi\n xor %esi, %esi\n syscall\n"  /* access F_OK */
	"  test %rax, %rax\n jnz 1b\n"
	"  mov 0(%rsp), %rbp\n"
	".endm\n"

	".macro FPU_STORE_COMMON\n"
	"  .irp i,7,6,5,4,3,2,1,0\n"
	"  fstpt 2112+\\i*16(%rbp)\n"
	"  .endr\n"
	"  stmxcsr 2240(%rbp)\n"
	"  fnstcw 2244(%rbp)\n"
	"  mov %rbx, 2248(%rbp)\n mov %r8, 2256(%rbp)\n mov %r9, 2264(%rbp)\n"
	"  mov %r12, 2272(%rbp)\n mov %r13, 2280(%rbp)\n mov %r14, 2288(%rbp)\n"
	"  mov %r15, 2296(%rbp)\n"
	".endm\n"

	".macro FPU_EPILOGUE\n"
	"  ldmxcsr 32(%rsp)\n"
	"  fldcw 36(%rsp)\n"
	"  vzeroupper\n"
	"  add $56, %rsp\n"
	"  pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbx\n pop %rbp\n"
	"  ret\n"
	".endm\n"

	".text\n"
	".globl fpu_run_avx2\n"
	".type fpu_run_avx2, @function\n"
	"fpu_run_avx2:\n"
	"  FPU_PROLOGUE\n"
	"  .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"
	"  vmovdqu \\i*64(%rbp), %ymm\\i\n"
	"  .endr\n"
	"  FPU_LOAD_COMMON\n"
	"  FPU_WAIT\n"
	"  .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"
	"  vmovdqu %ymm\\i, \\i*64(%rbp)\n"
	"  .endr\n"
	"  FPU_STORE_COMMON\n"
	"  FPU_EPILOGUE\n"
	".size fpu_run_avx2, .-fpu_run_avx2\n"

	".globl fpu_run_avx512\n"
	".type fpu_run_avx512, @function\n"
	"fpu_run_avx512:\n"
	"  FPU_PROLOGUE\n"
	"  .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
	"  vmovdqu64 \\i*64(%rbp), %zmm\\i\n"
	"  .endr\n"
	"  .irp i,0,1,2,3,4,5,6,7\n"
	"  kmovq 2048+\\i*8(%rbp), %k\\i\n"
	"  .endr\n"
	"  FPU_LOAD_COMMON\n"
	"  FPU_WAIT\n"
	"  .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
	"  vmovdqu64 %zmm\\i, \\i*64(%rbp)\n"
	"  .endr\n"
	"  .irp i,0,1,2,3,4,5,6,7\n"
	"  kmovq %k\\i, 2048+\\i*8(%rbp)\n"
	"  .endr\n"
	"  FPU_STORE_COMMON\n"
	"  FPU_EPILOGUE\n"
	".size fpu_run_avx512, .-fpu_run_avx512\n");

static struct fpstate in, out;

static void fill(int avx512)
{
	static const long double st[8] = {
		1.0L / 3.0L,	      -123456.789L, 3.14159265358979323846264L, 1e-300L,
		6.02214076e23L,	      -0.0L,	    2.71828182845904523536L,	-7.25e4000L,
	};
	uint64_t seed = (uint64_t)tp_pid * 0x100000001ULL;

	memset(&in, 0, sizeof(in));
	for (int r = 0; r < 32; r++)
		for (int b = 0; b < 64; b++)
			in.zmm[r][b] = (uint8_t)(tp_pattern((uint64_t)r * 64 + b, seed) | 1);
	if (!avx512)
		for (int r = 0; r < 32; r++)
			memset(in.zmm[r] + (r < 16 ? 32 : 0), 0, r < 16 ? 32 : 64);
	for (int i = 0; i < 8; i++) {
		in.k[i] = avx512 ? tp_pattern(1000 + i, seed) : 0;
		memcpy(in.st[i], &st[i], 10);
	}
	for (int i = 0; i < 7; i++)
		in.gpr[i] = tp_pattern(2000 + i, seed);
	/* all exceptions masked, round toward zero, FTZ, DAZ, sticky PE and IE */
	in.mxcsr = 0x1f80 | 0x6000 | 0x8000 | 0x40 | 0x21;
	/* exceptions masked, 53-bit precision, round up */
	in.fcw = 0x007f | 0x0200 | 0x0800;
}

static void check(int avx512)
{
	int nregs = avx512 ? 32 : 16, width = avx512 ? 64 : 32;

	for (int r = 0; r < nregs; r++)
		for (int part = 0; part * 16 < width; part++)
			if (memcmp(in.zmm[r] + part * 16, out.zmm[r] + part * 16, 16)) {
				tp_fail("%cmm%d bytes %d-%d differ", avx512 ? 'z' : 'y', r, part * 16,
					part * 16 + 15);
			}
	if (avx512)
		for (int i = 0; i < 8; i++)
			if (in.k[i] != out.k[i])
				tp_fail("k%d is %#llx, expected %#llx", i, (unsigned long long)out.k[i],
					(unsigned long long)in.k[i]);
	for (int i = 0; i < 8; i++)
		if (memcmp(in.st[i], out.st[i], 10)) {
			long double a, b;
			memcpy(&a, in.st[i], 10);
			memcpy(&b, out.st[i], 10);
			tp_fail("x87 st(%d) is %Lg, expected %Lg", 7 - i, b, a);
		}
	if (in.mxcsr != out.mxcsr)
		tp_fail("MXCSR is %#x, expected %#x", out.mxcsr, in.mxcsr);
	if (in.fcw != out.fcw)
		tp_fail("x87 control word is %#x, expected %#x", out.fcw, in.fcw);
	for (int i = 0; i < 7; i++)
		if (in.gpr[i] != out.gpr[i])
			tp_fail("%s is %#llx, expected %#llx", gpr_names[i], (unsigned long long)out.gpr[i],
				(unsigned long long)in.gpr[i]);
}

int main(int argc, char **argv)
{
	int avx512;

	tp_init(argc, argv, 1, "GOFILE [avx2|avx512]");
	__builtin_cpu_init();
	if (!__builtin_cpu_supports("avx2"))
		tp_die("this CPU has no AVX2");
	avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
	if (argc > 2 && !strcmp(argv[2], "avx2"))
		avx512 = 0;
	else if (argc > 2 && !strcmp(argv[2], "avx512") && !avx512)
		tp_die("this CPU has no AVX-512 (F and BW)");

	fill(avx512);
	memset(&out, 0, sizeof(out));
	printf("fpu: %s registers\n", avx512 ? "zmm0-31, k0-7" : "ymm0-15");
	fflush(stdout);
	/* Loads the registers, writes READY, waits for GOFILE, stores them. */
	if (avx512)
		fpu_run_avx512(&in, &out, tp_gofile);
	else
		fpu_run_avx2(&in, &out, tp_gofile);

	if (tp_sabotaged("ymm"))
		out.zmm[5][8] ^= 1; /* within a ymm register: checked with or without AVX-512 */
	if (tp_sabotaged("mxcsr"))
		out.mxcsr = 0x1f80;
	check(avx512);
	return tp_finish();
}
