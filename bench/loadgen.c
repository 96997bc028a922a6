/* loadgen: call getppid(2) (raw syscall, never cached by libc) at full speed or at a
 * given rate, for a given time; prints "calls=N seconds=S rate=R" on stdout.
 *
 *   loadgen SECONDS [CALLS_PER_SECOND]     (rate 0 or absent: full speed)
 *
 * Run it pinned to one CPU (taskset -c 0) so the BPF program's records all land in that
 * CPU's perf ring and the reader keeps the other CPU. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: loadgen SECONDS [CALLS_PER_SECOND]\n");
		return 2;
	}
	double secs = atof(argv[1]);
	double rate = argc == 3 ? atof(argv[2]) : 0;
	uint64_t calls = 0;
	double start = now(), end = start + secs, t = start;
	while (t < end) {
		/* Batches of 64 calls between clock reads. */
		for (int i = 0; i < 64; i++)
			syscall(SYS_getppid);
		calls += 64;
		t = now();
		if (rate > 0) {
			/* Busy-wait until the schedule allows the next batch. */
			double due = start + calls / rate;
			while (t < due && t < end)
				t = now();
		}
	}
	double took = now() - start;
	printf("calls=%llu seconds=%.3f rate=%.0f\n", (unsigned long long)calls, took,
	       calls / took);
	return 0;
}
