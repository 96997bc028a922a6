// Rule: a program type newer than the kernel: raw tracepoints (4.17).
#include "check_common.h"

SEC("raw_tracepoint/sched_switch")
int raw(void *ctx)
{
    return 0;
}
