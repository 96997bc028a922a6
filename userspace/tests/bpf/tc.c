// A redbpf-style `tc_action/<name>` program (loaded as a direct-action classifier on
// --iface ingress): drops UDP datagrams to port 9, passes everything else, and counts both.
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
#define SEC(n) __attribute__((section(n), used))
struct bpf_map_def { u32 type, key_size, value_size, max_entries, map_flags; };
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_skb_load_bytes)(const void *skb, u32 off, void *to, u32 len) = (void *)26;

/* [0] = packets passed, [1] = UDP datagrams to port 9 dropped */
struct bpf_map_def SEC("maps") verdicts = { .type = 2, .key_size = 4, .value_size = 8, .max_entries = 2 };

static void count(u32 idx)
{
    u64 *v = bpf_map_lookup_elem(&verdicts, &idx);
    if (v)
        __sync_fetch_and_add(v, 1);
}

struct __sk_buff { u32 len; };

SEC("tc_action/drop_udp_9")
int drop_udp_9(struct __sk_buff *skb)
{
    u8 ethertype[2], proto, dport[2];
    /* Ethernet, then IPv4 without options (20 bytes), then UDP. */
    if (bpf_skb_load_bytes(skb, 12, ethertype, 2) == 0 && ethertype[0] == 0x08 &&
        ethertype[1] == 0x00 && bpf_skb_load_bytes(skb, 14 + 9, &proto, 1) == 0 &&
        proto == 17 && bpf_skb_load_bytes(skb, 14 + 20 + 2, dport, 2) == 0 &&
        dport[0] == 0 && dport[1] == 9) {
        count(1);
        return 2; /* TC_ACT_SHOT */
    }
    count(0);
    return 0; /* TC_ACT_OK */
}

char _license[] SEC("license") = "GPL";
