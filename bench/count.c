/* count: the independent reader of a loader's `--json` output in bench/throughput.sh.
 *
 *   loader --json OBJECT | count OUTFILE
 *   bpftool -j map event_pipe pinned MAP | count OUTFILE bpftool
 *
 * Reads stdin to its end in large blocks and writes one line to OUTFILE:
 *   lines=N events=N lost_lines=N lost=N gaps=N last_seq=N summary_events=N summary_lost=N
 * lines: every line; events: lines starting {"type":"event"; lost: the sum of the `count`
 * fields of {"type":"lost" lines; gaps: records missing between consecutive `"seq":`
 * values of the event lines, from 0 (bench/probe numbers each CPU's calls 1, 2, ...; the producer
 * is pinned to one CPU, so a gap is a record that never reached the output, whatever the
 * loader says); summary_*: the loader's own final summary line, for comparison.
 * Nothing here trusts the loader's counters: delivered is what came out of the pipe.
 * bpftool mode: bpftool -j writes one JSON array on one line, a {"type":9,... object per
 * sample (PERF_RECORD_SAMPLE) whose "data" lists the bytes (seq: bytes 8-15, little
 * endian) and a {"type":2,...,"lost":N} object per PERF_RECORD_LOST. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t field(const char *line, size_t len, const char *name)
{
	const char *p = memmem(line, len, name, strlen(name));
	if (!p)
		return 0;
	return strtoull(p + strlen(name), NULL, 10);
}

/* bpftool mode: scan a block for sample and lost objects. An object split by the block
 * boundary is kept for the next block (the caller keeps the bytes after `*used`). */
static uint64_t b_events, b_lost, b_gaps, b_last;

static size_t bpftool_scan(const char *buf, size_t len)
{
	static const char sample[] = "{\"type\":9,";
	static const char lostobj[] = "{\"type\":2,";
	size_t done = 0;
	for (;;) {
		const char *o = memchr(buf + done, '{', len - done);
		if (!o)
			return len;
		const char *close = memchr(o, '}', (size_t)(buf + len - o));
		if (!close)
			return (size_t)(o - buf); /* incomplete object: keep it */
		size_t olen = (size_t)(close - o) + 1;
		if (olen > sizeof sample && memcmp(o, sample, sizeof sample - 1) == 0) {
			b_events++;
			const char *d = memmem(o, olen, "\"data\":[", 8);
			if (d) {
				uint64_t seq = 0;
				char *p = (char *)d + 8;
				for (int i = 0; i < 16; i++) {
					unsigned long byte = strtoul(p, &p, 10);
					if (i >= 8)
						seq |= (uint64_t)byte << (8 * (i - 8));
					if (*p == ',')
						p++;
				}
				if (seq > b_last + 1)
					b_gaps += seq - b_last - 1;
				b_last = seq;
			}
		} else if (olen > sizeof lostobj && memcmp(o, lostobj, sizeof lostobj - 1) == 0) {
			b_lost += field(o, olen, "\"lost\":");
		}
		done = (size_t)(close - buf) + 1;
	}
}

static int bpftool_main(const char *out)
{
	size_t cap = 1 << 20, have = 0;
	char *buf = malloc(cap);
	if (!buf)
		return 1;
	for (;;) {
		ssize_t n = read(0, buf + have, cap - have);
		if (n <= 0)
			break;
		size_t end = have + (size_t)n, used = bpftool_scan(buf, end);
		memmove(buf, buf + used, end - used);
		have = end - used;
		if (have == cap)
			have = 0; /* no object is this long: drop the garbage */
	}
	FILE *f = fopen(out, "w");
	if (!f)
		return 1;
	fprintf(f, "lines=0 events=%llu lost_lines=0 lost=%llu gaps=%llu last_seq=%llu "
		   "summary_events=0 summary_lost=0\n",
		(unsigned long long)b_events, (unsigned long long)b_lost,
		(unsigned long long)b_gaps, (unsigned long long)b_last);
	return fclose(f) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[2], "bpftool") == 0)
		return bpftool_main(argv[1]);
	if (argc != 2) {
		fprintf(stderr, "usage: count OUTFILE [bpftool] < output\n");
		return 2;
	}
	static const char ev[] = "{\"type\":\"event\"";
	static const char lo[] = "{\"type\":\"lost\"";
	static const char su[] = "{\"type\":\"summary\"";
	size_t cap = 1 << 20, have = 0;
	char *buf = malloc(cap + 1);
	uint64_t lines = 0, events = 0, lost_lines = 0, lost = 0, gaps = 0, last_seq = 0;
	uint64_t s_events = 0, s_lost = 0;
	if (!buf)
		return 1;
	for (;;) {
		ssize_t n = read(0, buf + have, cap - have);
		if (n < 0)
			return 1;
		if (n == 0 && have == 0)
			break;
		size_t end = have + (size_t)n, start = 0;
		if (n == 0)
			buf[end++] = '\n'; /* a last line without its newline */
		for (;;) {
			char *nl = memchr(buf + start, '\n', end - start);
			if (!nl)
				break;
			const char *line = buf + start;
			size_t len = (size_t)(nl - line);
			lines++;
			if (len >= sizeof ev - 1 && memcmp(line, ev, sizeof ev - 1) == 0) {
				events++;
				uint64_t seq = field(line, len, "\"seq\":");
				if (seq > last_seq + 1)
					gaps += seq - last_seq - 1;
				if (seq)
					last_seq = seq;
			} else if (len >= sizeof lo - 1 && memcmp(line, lo, sizeof lo - 1) == 0) {
				lost_lines++;
				lost += field(line, len, "\"count\":");
			} else if (len >= sizeof su - 1 && memcmp(line, su, sizeof su - 1) == 0) {
				s_events = field(line, len, "\"events\":");
				s_lost = field(line, len, "\"lost\":");
			}
			start = (size_t)(nl - buf) + 1;
		}
		if (n == 0)
			break;
		memmove(buf, buf + start, end - start);
		have = end - start;
		if (have == cap) { /* one line longer than the buffer */
			cap *= 2;
			buf = realloc(buf, cap + 1);
			if (!buf)
				return 1;
		}
	}
	FILE *f = fopen(argv[1], "w");
	if (!f)
		return 1;
	fprintf(f,
		"lines=%llu events=%llu lost_lines=%llu lost=%llu gaps=%llu last_seq=%llu "
		"summary_events=%llu summary_lost=%llu\n",
		(unsigned long long)lines, (unsigned long long)events,
		(unsigned long long)lost_lines, (unsigned long long)lost,
		(unsigned long long)gaps, (unsigned long long)last_seq, (unsigned long long)s_events,
		(unsigned long long)s_lost);
	return fclose(f) == 0 ? 0 : 1;
}
