/* rawblast: the bench's small-frame load whose generator and sink cost almost
 * nothing, so that what a measurement spends is the switch's (bench/udp64raw.py).
 *
 *   rawblast send IFNAME SRCMAC DSTMAC SRCIP DSTIP DPORT FLOWS SECONDS
 *       Ready-made 60-byte Ethernet/IPv4/UDP frames (18 bytes of payload, valid IPv4
 *       and UDP checksums), SRCMAC/SRCIP -> DSTMAC/DSTIP:DPORT, injected on IFNAME
 *       through an AF_PACKET socket that bypasses the qdisc, in sendmmsg() bursts,
 *       for SECONDS. The UDP source port cycles over FLOWS values (40000 ..
 *       40000+FLOWS-1), frame by frame, so that flow hashing sees FLOWS flows; the
 *       sequence is the same every run. Prints {"sent", "refused", "elapsed", "cpu_s", ...}:
 *       frames the device took, frames it refused (ENOBUFS: a full queue; each one
 *       is followed by a 10 us pause, so a full queue is not spun on), and the CPU
 *       time it used (user + system, as getrusage() counts it). sendmmsg(), not a
 *       PACKET_TX_RING: the ring would hand the kernel the frame beyond its Ethernet
 *       header as a page fragment, and a non-linear 60-byte skb is not what a tenant
 *       sends (a veth whose peer runs XDP would copy it whole first).
 *   rawblast drop IFNAME DPORT MAXSECONDS
 *       The sink: a BPF program on IFNAME's tc ingress (tcx link, Linux >= 6.6) that
 *       stops every IPv4 UDP frame to DPORT there, after the interface counted it and
 *       before the IP stack, and counts them. Prints "ready" once attached; at
 *       SIGTERM/SIGINT or after MAXSECONDS prints {"dropped"} and exits, which
 *       detaches the program.
 *
 * Both modes are bounded in time and die with their parent (PR_SET_PDEATHSIG);
 * the result is one JSON line on stdout. Root (CAP_NET_RAW, CAP_BPF) is needed.
 */
#define _GNU_SOURCE
#define TOOL "rawblast"
#include <arpa/inet.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "blast.h"

#define BURST 256
#define MAX_FLOWS 256
#define SPORT_BASE 40000
#define PAYLOAD "tapswitch-rawblast"       /* 18 bytes: a 64-byte frame with the FCS */
#define PAYLOAD_LEN (sizeof PAYLOAD - 1)
#define FRAME_LEN (14 + 20 + 8 + PAYLOAD_LEN)
#define TS_TCX_INGRESS 46                  /* BPF_TCX_INGRESS (Linux >= 6.6; newer than the uapi headers here) */
#define TCX_NEXT (-1)                      /* the frame goes on to what follows the hook */
#define TC_ACT_SHOT 2

static void usage_error(const char *what) {
    fprintf(stderr, TOOL ": %s\n", what);
    exit(2);
}

static unsigned ifindex_of(const char *name) {
    unsigned index = if_nametoindex(name);
    if (index == 0) die(name);
    return index;
}

static uint16_t parse_port(const char *text) {
    char *end;
    long v = strtol(text, &end, 10);
    if (*end || v < 1 || v > 65535) usage_error("a port must be 1..65535");
    return (uint16_t)v;
}

static void parse_mac(const char *text, uint8_t mac[6]) {
    unsigned m[6];
    char tail;
    if (sscanf(text, "%x:%x:%x:%x:%x:%x%c", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5], &tail) != 6)
        usage_error("a MAC address must look like 02:00:00:00:00:01");
    for (int i = 0; i < 6; i++) {
        if (m[i] > 255) usage_error("a MAC address byte is above ff");
        mac[i] = (uint8_t)m[i];
    }
}

static uint32_t parse_ip(const char *text) {
    struct in_addr a;
    if (inet_pton(AF_INET, text, &a) != 1) usage_error("bad IPv4 address");
    return a.s_addr;                       /* network order */
}

/* The ones'-complement sum of a byte string, added to ``sum`` (RFC 1071). */
static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len) {
    for (size_t i = 0; i + 1 < len; i += 2) sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (len & 1) sum += (uint32_t)p[len - 1] << 8;
    return sum;
}

static uint16_t csum_fold(uint32_t sum) {
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }

/* One frame: Ethernet, IPv4 (DF, TTL 64, header checksum), UDP (checksum over the
 * pseudo-header), the payload. Addresses in network order. */
static void build_frame(uint8_t *f, const uint8_t src_mac[6], const uint8_t dst_mac[6],
                        uint32_t src_ip, uint32_t dst_ip, uint16_t sport, uint16_t dport) {
    uint8_t *ip = f + 14, *udp = ip + 20;
    memset(f, 0, FRAME_LEN);
    memcpy(f, dst_mac, 6);
    memcpy(f + 6, src_mac, 6);
    put16(f + 12, ETH_P_IP);
    ip[0] = 0x45;
    put16(ip + 2, (uint16_t)(20 + 8 + PAYLOAD_LEN));
    put16(ip + 6, 0x4000);                 /* don't fragment */
    ip[8] = 64;
    ip[9] = IPPROTO_UDP;
    memcpy(ip + 12, &src_ip, 4);
    memcpy(ip + 16, &dst_ip, 4);
    put16(ip + 10, csum_fold(csum_add(0, ip, 20)));
    put16(udp, sport);
    put16(udp + 2, dport);
    put16(udp + 4, (uint16_t)(8 + PAYLOAD_LEN));
    memcpy(udp + 8, PAYLOAD, PAYLOAD_LEN);
    uint32_t sum = csum_add(0, ip + 12, 8) + IPPROTO_UDP + 8 + PAYLOAD_LEN;
    uint16_t check = csum_fold(csum_add(sum, udp, 8 + PAYLOAD_LEN));
    put16(udp + 6, check ? check : 0xffff);
}

static int do_send(char **argv) {
    static uint8_t frames[MAX_FLOWS][FRAME_LEN];
    static struct mmsghdr msgs[BURST];
    static struct iovec iov[BURST];
    uint8_t src_mac[6], dst_mac[6];
    parse_mac(argv[1], src_mac);
    parse_mac(argv[2], dst_mac);
    uint32_t src_ip = parse_ip(argv[3]), dst_ip = parse_ip(argv[4]);
    uint16_t dport = parse_port(argv[5]);
    int flows = atoi(argv[6]);
    double seconds = atof(argv[7]);
    if (flows < 1 || flows > MAX_FLOWS || BURST % flows) usage_error("FLOWS must divide 256");
    if (!(seconds > 0 && seconds <= 600)) usage_error("SECONDS must be in (0, 600]");
    for (int i = 0; i < flows; i++)
        build_frame(frames[i], src_mac, dst_mac, src_ip, dst_ip, (uint16_t)(SPORT_BASE + i), dport);

    int fd = socket(AF_PACKET, SOCK_RAW, 0);          /* protocol 0: it receives nothing */
    if (fd < 0) die("AF_PACKET socket");
    int one = 1, sndbuf = 4 << 20;
    if (setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) < 0)
        die("PACKET_QDISC_BYPASS");
    setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf);
    struct sockaddr_ll to = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP),
                             .sll_ifindex = (int)ifindex_of(argv[0]), .sll_halen = 6};
    memcpy(to.sll_addr, dst_mac, 6);
    for (int i = 0; i < BURST; i++) {                  /* burst slot i carries flow i % FLOWS */
        iov[i].iov_base = frames[i % flows];
        iov[i].iov_len = FRAME_LEN;
        msgs[i].msg_hdr = (struct msghdr){.msg_name = &to, .msg_namelen = sizeof to,
                                          .msg_iov = &iov[i], .msg_iovlen = 1};
    }

    setup_signals(seconds + 5);
    uint64_t sent = 0, refused = 0;
    double start = now(), end = start + seconds;
    const struct timespec pause = {0, 10000};
    int pos = 0;                                       /* the next burst slot to send */
    while (!stop && now() < end) {
        for (int k = 0; k < 16 && !stop; k++) {        /* the clock every 16 bursts */
            /* sendmmsg() stops at the first frame the device refuses: that one is lost
             * (and counted), the burst goes on after it, so the flows keep their order */
            int want = BURST - pos;
            int n = sendmmsg(fd, msgs + pos, (unsigned)want, 0);
            if (n < 0 && errno == EINTR) break;
            if (n < 0 && errno != ENOBUFS && errno != EAGAIN) die("sendmmsg");
            if (n > 0) {
                sent += (uint64_t)n;
                pos += n;
            }
            if (n < want) {
                refused++;
                pos++;
                nanosleep(&pause, NULL);
            }
            if (pos == BURST) pos = 0;
        }
    }
    double elapsed = now() - start;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
    printf("{\"sent\": %llu, \"refused\": %llu, \"elapsed\": %.6f, \"cpu_s\": %.6f, "
           "\"flows\": %d, \"frame_len\": %zu}\n", (unsigned long long)sent,
           (unsigned long long)refused, elapsed, cpu, flows, (size_t)FRAME_LEN);
    return 0;
}

static long sys_bpf(int cmd, union bpf_attr *attr) {
    return syscall(__NR_bpf, cmd, attr, sizeof *attr);
}

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), \
                                               .off = (o), .imm = (i)})
#define LD_ABS(size, at) INSN(BPF_LD | BPF_ABS | (size), 0, 0, 0, (at))
#define JNE_PASS(value, here) INSN(BPF_JMP | BPF_JNE | BPF_K, 0, 0, PASS - (here) - 1, (value))

/* The sink's program: an IPv4 UDP frame (no IP options) to ``dport`` adds one to the
 * array map's entry 0 and is dropped; anything else goes on. LD_ABS reads from the
 * Ethernet header on (tc ingress pushes it back), also from a non-linear frame. */
static int load_drop_program(int map_fd, uint16_t dport) {
    enum { PASS = 20 };
    struct bpf_insn prog[] = {
        INSN(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0),        /* 0: r6 = ctx (LD_ABS wants it) */
        LD_ABS(BPF_H, 12), JNE_PASS(ETH_P_IP, 2),             /* 1-2: ethertype */
        LD_ABS(BPF_B, 14), JNE_PASS(0x45, 4),                 /* 3-4: IPv4, 20-byte header */
        LD_ABS(BPF_B, 23), JNE_PASS(IPPROTO_UDP, 6),          /* 5-6: protocol */
        LD_ABS(BPF_H, 36), JNE_PASS(dport, 8),                /* 7-8: UDP destination port */
        INSN(BPF_LD | BPF_DW | BPF_IMM, 1, BPF_PSEUDO_MAP_FD, 0, map_fd), INSN(0, 0, 0, 0, 0),
        INSN(BPF_ST | BPF_MEM | BPF_W, 10, 0, -4, 0),         /* 11: key 0 on the stack */
        INSN(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0),
        INSN(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -4),       /* 13: r2 = &key */
        INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),
        INSN(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 2, 0),          /* 15: no entry: just drop */
        INSN(BPF_ALU64 | BPF_MOV | BPF_K, 1, 0, 0, 1),
        INSN(BPF_STX | BPF_ATOMIC | BPF_DW, 0, 1, 0, BPF_ADD),/* 17: entry += 1 */
        INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, TC_ACT_SHOT),
        INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
        INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, TCX_NEXT), /* 20: PASS */
        INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
    };
    static char log[8192];
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.prog_type = BPF_PROG_TYPE_SCHED_CLS;
    a.insns = (uint64_t)(uintptr_t)prog;
    a.insn_cnt = sizeof prog / sizeof prog[0];
    a.license = (uint64_t)(uintptr_t)"GPL";
    a.log_buf = (uint64_t)(uintptr_t)log;
    a.log_size = sizeof log;
    a.log_level = 1;
    int fd = (int)sys_bpf(BPF_PROG_LOAD, &a);
    if (fd < 0) {
        fprintf(stderr, "rawblast: loading the drop program: %s\n%s\n", strerror(errno), log);
        exit(2);
    }
    return fd;
}

static int do_drop(char **argv) {
    unsigned ifindex = ifindex_of(argv[0]);
    uint16_t dport = parse_port(argv[1]);
    double max_seconds = atof(argv[2]);
    if (!(max_seconds > 0 && max_seconds <= 3600)) usage_error("MAXSECONDS must be in (0, 3600]");
    sigset_t ends, none;                   /* held until sigsuspend(): none is missed */
    sigemptyset(&ends);
    sigaddset(&ends, SIGTERM);
    sigaddset(&ends, SIGINT);
    sigaddset(&ends, SIGALRM);
    sigprocmask(SIG_BLOCK, &ends, NULL);
    setup_signals(max_seconds);
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_type = BPF_MAP_TYPE_ARRAY;
    a.key_size = 4;
    a.value_size = 8;
    a.max_entries = 1;
    int map_fd = (int)sys_bpf(BPF_MAP_CREATE, &a);
    if (map_fd < 0) die("creating the counter map");
    int prog_fd = load_drop_program(map_fd, dport);
    memset(&a, 0, sizeof a);
    a.link_create.prog_fd = (uint32_t)prog_fd;
    a.link_create.target_ifindex = ifindex;
    a.link_create.attach_type = TS_TCX_INGRESS;
    if (sys_bpf(BPF_LINK_CREATE, &a) < 0) die("attaching to tc ingress (tcx, Linux >= 6.6)");

    printf("ready\n");
    fflush(stdout);
    sigemptyset(&none);
    while (!stop) sigsuspend(&none);

    uint32_t key = 0;
    uint64_t dropped = 0;
    memset(&a, 0, sizeof a);
    a.map_fd = (uint32_t)map_fd;
    a.key = (uint64_t)(uintptr_t)&key;
    a.value = (uint64_t)(uintptr_t)&dropped;
    if (sys_bpf(BPF_MAP_LOOKUP_ELEM, &a) < 0) die("reading the counter");
    printf("{\"dropped\": %llu}\n", (unsigned long long)dropped);
    return 0;                              /* exiting closes the link: the program is detached */
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 10 && !strcmp(argv[1], "send"))
        return do_send(argv + 2);
    if (argc == 5 && !strcmp(argv[1], "drop"))
        return do_drop(argv + 2);
    fprintf(stderr, "usage: rawblast send IFNAME SRCMAC DSTMAC SRCIP DSTIP DPORT FLOWS SECONDS |\n"
                    "       rawblast drop IFNAME DPORT MAXSECONDS\n");
    return 2;
}
