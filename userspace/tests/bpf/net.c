// XDP (redbpf `xdp/<name>` form) and socket filter (redbpf `socketfilter/<name>` form)
// counting packets in an array map; the filter passes every packet.
typedef unsigned int u32;
typedef unsigned long long u64;
#define SEC(n) __attribute__((section(n), used))
struct bpf_map_def { u32 type, key_size, value_size, max_entries, map_flags; };
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;

/* [0] = packets seen by XDP, [1] = packets seen by the socket filter */
struct bpf_map_def SEC("maps") packets = { .type = 2, .key_size = 4, .value_size = 8, .max_entries = 2 };

static void count(u32 idx)
{
    u64 *v = bpf_map_lookup_elem(&packets, &idx);
    if (v)
        __sync_fetch_and_add(v, 1);
}

SEC("xdp/count_pass")
int xdp_count(void *ctx) { count(0); return 2; /* XDP_PASS */ }

struct __sk_buff { u32 len; };

SEC("socketfilter/count_all")
int sock_count(struct __sk_buff *skb) { count(1); return skb->len; }

char _license[] SEC("license") = "GPL";
