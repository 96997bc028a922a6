// Rule: a kprobe whose `version` section names one release (4.14.0, as an object built
// against 4.14 headers with LINUX_VERSION_CODE has it): before 5.0 the kernel loads it
// only if that is its own LINUX_VERSION_CODE.
#define CHECK_VERSION 0x040e00
#include "check_common.h"

SEC("kprobe/do_nanosleep")
int pinned(void *ctx)
{
    return 0;
}
