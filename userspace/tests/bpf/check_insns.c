// Rule: more than 4096 instructions (lifted in 5.2). A fully unrolled loop of 1500
// read-modify-writes of a per-CPU array is about 6000 instructions, with no back-edge.
#include "check_common.h"

struct bpf_map_def SEC("maps") values = {
    .type = 6, /* PERCPU_ARRAY, 4.6 */
    .key_size = 4,
    .value_size = 8 * 64,
    .max_entries = 1,
};

SEC("kprobe/do_nanosleep")
int big(void *ctx)
{
    u32 zero = 0;
    volatile u64 *v = bpf_map_lookup_elem(&values, &zero);
    if (!v)
        return 0;
#pragma clang loop unroll(full)
    for (int i = 0; i < 1500; i++)
        v[i % 64] += i;
    return 0;
}
