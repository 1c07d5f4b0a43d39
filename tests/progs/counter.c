/* counter [INTERVAL_MS [START]]
 *
 * Prints an incrementing counter, START (default 1), START+1, ..., one
 * number a line, flushed, every INTERVAL_MS milliseconds (default 500) until
 * killed. For the README demo and the benchmark; it takes no GOFILE.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
	long ms = argc > 1 ? strtol(argv[1], NULL, 0) : 500;
	unsigned long long i = argc > 2 ? strtoull(argv[2], NULL, 0) : 1;
	struct timespec ts;

	if (ms <= 0)
		ms = 500;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	for (;; i++) {
		printf("%llu\n", i);
		fflush(stdout);
		nanosleep(&ts, NULL);
	}
}
