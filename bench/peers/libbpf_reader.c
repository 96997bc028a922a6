/* libbpf_reader: the C reference readers of bench/throughput.sh, written against libbpf's
 * public API (libbpf-dev). They count records and print nothing per record, so their
 * figures are what a reader costs with no output at all: the "best reader" rows.
 *
 *   libbpf_reader perf PINNED_MAP PAGES WAKEUP
 *       a perf buffer on the pinned BPF_MAP_TYPE_PERF_EVENT_ARRAY (bench/probe's EVENTS,
 *       pinned from the process that attached it), PAGES pages per CPU, built with
 *       perf_buffer__new_raw so the kernel wakes the reader once per WAKEUP samples
 *       (wakeup sampling) instead of once per record.
 *   libbpf_reader ringbuf OBJECT
 *       opens, loads and attaches OBJECT (bench/ringbuf/getppid.bpf.c), reads its
 *       BPF_MAP_TYPE_RINGBUF EVENTS with ring_buffer__poll.
 *
 * Once its buffers are open it says "libbpf_reader: ready" on stderr. On SIGINT/SIGTERM
 * it stops polling, drains what is queued and prints on stderr:
 *   libbpf_reader: delivered=N lost=N offered=N gaps=N last_seq=N
 * (perf: lost is the kernel's PERF_RECORD_LOST sum and offered 0, the attaching process
 * knows it; ringbuf: offered is CALLS[0] and lost CALLS[1], the probe's failed reserves;
 * gaps: records missing between the `seq` numbers received). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

struct call {
	uint64_t ts, seq;
	uint32_t pid, tgid, uid, cpu;
	char comm[16];
};

static volatile sig_atomic_t stop;
static uint64_t delivered, lost, gaps, last_seq;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void seen(const void *data, size_t size)
{
	const struct call *c = data;
	delivered++;
	if (size >= sizeof *c) {
		if (c->seq > last_seq + 1)
			gaps += c->seq - last_seq - 1;
		last_seq = c->seq;
	}
}

static enum bpf_perf_event_ret on_perf_event(void *ctx, int cpu, struct perf_event_header *h)
{
	(void)ctx;
	(void)cpu;
	if (h->type == PERF_RECORD_SAMPLE) {
		/* header, u32 size, raw bytes */
		const uint32_t *size = (const uint32_t *)(h + 1);
		seen(size + 1, *size);
	} else if (h->type == PERF_RECORD_LOST) {
		/* header, u64 id, u64 lost */
		const uint64_t *f = (const uint64_t *)(h + 1);
		lost += f[1];
	}
	return LIBBPF_PERF_EVENT_CONT;
}

static int on_ring_record(void *ctx, void *data, size_t size)
{
	(void)ctx;
	seen(data, size);
	return 0;
}

static uint64_t percpu_sum(int fd, uint32_t key)
{
	int n = libbpf_num_possible_cpus();
	uint64_t *v = calloc((size_t)n, sizeof *v), s = 0;
	if (v && bpf_map_lookup_elem(fd, &key, v) == 0)
		for (int i = 0; i < n; i++)
			s += v[i];
	free(v);
	return s;
}

static int run_perf(const char *pin, int pages, int wakeup)
{
	int fd = bpf_obj_get(pin);
	if (fd < 0) {
		fprintf(stderr, "libbpf_reader: %s: %s\n", pin, strerror(errno));
		return 1;
	}
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.config = PERF_COUNT_SW_BPF_OUTPUT,
		.sample_type = PERF_SAMPLE_RAW,
		.sample_period = 1,
		.wakeup_events = (uint32_t)wakeup,
	};
	struct perf_buffer_raw_opts opts = {.sz = sizeof opts};
	struct perf_buffer *pb =
		perf_buffer__new_raw(fd, (size_t)pages, &attr, on_perf_event, NULL, &opts);
	if (!pb) {
		fprintf(stderr, "libbpf_reader: perf_buffer__new_raw: %s\n", strerror(errno));
		return 1;
	}
	fprintf(stderr, "libbpf_reader: ready\n");
	while (!stop) {
		int err = perf_buffer__poll(pb, 100);
		if (err < 0 && err != -EINTR) {
			fprintf(stderr, "libbpf_reader: perf_buffer__poll: %d\n", err);
			break;
		}
	}
	perf_buffer__consume(pb);
	fprintf(stderr, "libbpf_reader: delivered=%llu lost=%llu offered=0 gaps=%llu last_seq=%llu\n",
		(unsigned long long)delivered, (unsigned long long)lost, (unsigned long long)gaps,
		(unsigned long long)last_seq);
	perf_buffer__free(pb);
	return 0;
}

static int run_ringbuf(const char *path)
{
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "libbpf_reader: %s: could not open or load\n", path);
		return 1;
	}
	struct bpf_program *prog = bpf_object__find_program_by_name(obj, "getppid");
	struct bpf_map *events = bpf_object__find_map_by_name(obj, "EVENTS");
	struct bpf_map *calls = bpf_object__find_map_by_name(obj, "CALLS");
	if (!prog || !events || !calls) {
		fprintf(stderr, "libbpf_reader: %s: no getppid, EVENTS or CALLS\n", path);
		return 1;
	}
	struct bpf_link *link = bpf_program__attach(prog);
	if (!link) {
		fprintf(stderr, "libbpf_reader: attach: %s\n", strerror(errno));
		return 1;
	}
	struct ring_buffer *rb =
		ring_buffer__new(bpf_map__fd(events), on_ring_record, NULL, NULL);
	if (!rb) {
		fprintf(stderr, "libbpf_reader: ring_buffer__new: %s\n", strerror(errno));
		return 1;
	}
	fprintf(stderr, "libbpf_reader: ready\n");
	while (!stop) {
		int err = ring_buffer__poll(rb, 100);
		if (err < 0 && err != -EINTR) {
			fprintf(stderr, "libbpf_reader: ring_buffer__poll: %d\n", err);
			break;
		}
	}
	bpf_link__destroy(link);
	ring_buffer__consume(rb);
	uint64_t offered = percpu_sum(bpf_map__fd(calls), 0);
	lost = percpu_sum(bpf_map__fd(calls), 1);
	fprintf(stderr, "libbpf_reader: delivered=%llu lost=%llu offered=%llu gaps=%llu last_seq=%llu\n",
		(unsigned long long)delivered, (unsigned long long)lost,
		(unsigned long long)offered, (unsigned long long)gaps, (unsigned long long)last_seq);
	ring_buffer__free(rb);
	bpf_object__close(obj);
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (argc == 5 && strcmp(argv[1], "perf") == 0)
		return run_perf(argv[2], atoi(argv[3]), atoi(argv[4]));
	if (argc == 3 && strcmp(argv[1], "ringbuf") == 0)
		return run_ringbuf(argv[2]);
	fprintf(stderr, "usage: libbpf_reader perf PINNED_MAP PAGES WAKEUP | ringbuf OBJECT\n");
	return 2;
}
