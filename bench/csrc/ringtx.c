/* ringtx: the kernel's cost of sending 64-byte frames on an interface through an
 * AF_PACKET socket, by how many frames each system call hands it -- the question behind a
 * ring port's transmit kick (fastpath/afpacket.pxi).
 *
 *   ringtx IFNAME ring|mmsg BURST FRAMES [CPU]
 *
 * ring: a TPACKET_V2 transmit ring; BURST frames are put in it, then one send() kicks it
 *       (the switch's way: afp_tx + afp_end), each frame's virtio-net header saying
 *       hdr_len = the whole frame (linear skb).
 * mmsg: BURST frames per sendmmsg() on a ring-less socket.
 * Both sockets: PACKET_VNET_HDR and PACKET_QDISC_BYPASS, as the switch's.  The frame is
 * UDP/IPv4 from 10.0.0.1 to 10.0.0.2, to a MAC the interface's peer does not have: the
 * peer counts it received and its stack drops it on arrival (PACKET_OTHERHOST), as a
 * sink that costs almost nothing.  Prints one JSON line: mode, burst, frames handed over, failed (refused by the
 * kernel), cpu_s (this process's user + system time, including the softirq work its sends
 * run on its CPU: the peer's receive on a veth), seconds (wall).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HDR 10                      /* struct virtio_net_hdr */
#define LEN 60                      /* the Ethernet frame (no FCS) */
#define SLOT 2048
#define SLOTS 512
#define MAX_BURST 256

static unsigned char frame[HDR + LEN];

static double cpu_seconds(void) {
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return r.ru_utime.tv_sec + r.ru_stime.tv_sec + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

static double wall_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char* what) {
    fprintf(stderr, "ringtx: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void build_frame(void) {
    unsigned char* e = frame + HDR;
    memset(frame, 0, sizeof frame);
    frame[2] = LEN;                                  /* hdr_len: all of it linear */
    memcpy(e, "\x02\x00\x00\x00\x00\x02", 6);          /* nobody's */
    memcpy(e + 6, "\x02\x00\x00\x00\x00\x01", 6);
    e[12] = 0x08;                                    /* IPv4 */
    e[14] = 0x45; e[17] = 46; e[22] = 64; e[23] = 17;
    memcpy(e + 26, "\x0a\x00\x00\x01\x0a\x00\x00\x02", 8);
    e[35] = 9; e[37] = 9; e[39] = 26;                /* UDP 9 -> 9, length 26, no checksum */
    unsigned sum = 0;
    for (int i = 14; i < 34; i += 2) sum += (e[i] << 8) | e[i + 1];
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    sum = ~sum & 0xffff;
    e[24] = sum >> 8; e[25] = sum & 0xff;
}

static int packet_socket(int ifindex) {
    int s = socket(AF_PACKET, SOCK_RAW, 0), one = 1;
    if (s < 0) die("socket(AF_PACKET)");
    if (setsockopt(s, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0) die("PACKET_VNET_HDR");
    if (setsockopt(s, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) < 0) die("PACKET_QDISC_BYPASS");
    struct sockaddr_ll a = {.sll_family = AF_PACKET, .sll_ifindex = ifindex};
    if (bind(s, (struct sockaddr*)&a, sizeof a) < 0) die("bind");
    return s;
}

static long send_ring(int s, long frames, int burst, long* failed) {
    int version = TPACKET_V2;
    if (setsockopt(s, SOL_PACKET, PACKET_VERSION, &version, sizeof version) < 0) die("PACKET_VERSION");
    struct tpacket_req req = {.tp_block_size = SLOT * 8, .tp_block_nr = SLOTS / 8,
                              .tp_frame_size = SLOT, .tp_frame_nr = SLOTS};
    if (setsockopt(s, SOL_PACKET, PACKET_TX_RING, &req, sizeof req) < 0) die("PACKET_TX_RING");
    unsigned char* ring = mmap(NULL, (size_t)SLOT * SLOTS, PROT_READ | PROT_WRITE, MAP_SHARED, s, 0);
    if (ring == MAP_FAILED) die("mmap");
    long sent = 0;
    unsigned next = 0;
    while (sent < frames) {
        for (int k = 0; k < burst; k++) {
            struct tpacket2_hdr* h = (struct tpacket2_hdr*)(ring + (size_t)next * SLOT);
            while (__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) != TP_STATUS_AVAILABLE)
                if (__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) == TP_STATUS_SEND_REQUEST)
                    send(s, NULL, 0, MSG_DONTWAIT);     /* left by a refused kick: again */
            memcpy((unsigned char*)h + TPACKET2_HDRLEN - sizeof(struct sockaddr_ll), frame, sizeof frame);
            h->tp_len = sizeof frame;
            __atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
            next = (next + 1) % SLOTS;
        }
        if (send(s, NULL, 0, MSG_DONTWAIT) < 0 && errno != EAGAIN && errno != ENOBUFS)
            (*failed)++;
        sent += burst;
    }
    return sent;
}

static long send_mmsg(int s, long frames, int burst, long* failed) {
    static unsigned char bufs[MAX_BURST][sizeof frame];
    struct mmsghdr m[MAX_BURST];
    struct iovec io[MAX_BURST];
    long sent = 0;
    while (sent < frames) {
        for (int k = 0; k < burst; k++) {
            memcpy(bufs[k], frame, sizeof frame);    /* the switch copies each frame too */
            io[k].iov_base = bufs[k];
            io[k].iov_len = sizeof frame;
            memset(&m[k], 0, sizeof m[k]);
            m[k].msg_hdr.msg_iov = &io[k];
            m[k].msg_hdr.msg_iovlen = 1;
        }
        int r = sendmmsg(s, m, burst, MSG_DONTWAIT);
        if (r < burst)
            *failed += burst - (r < 0 ? 0 : r);
        sent += burst;
    }
    return sent;
}

int main(int argc, char** argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: ringtx IFNAME ring|mmsg BURST FRAMES [CPU]\n");
        return 2;
    }
    int ifindex = if_nametoindex(argv[1]);
    if (!ifindex) die(argv[1]);
    int ring = !strcmp(argv[2], "ring");
    if (!ring && strcmp(argv[2], "mmsg")) {
        fprintf(stderr, "ringtx: mode is ring or mmsg, not %s\n", argv[2]);
        return 2;
    }
    int burst = atoi(argv[3]);
    long frames = atol(argv[4]);
    if (burst < 1 || burst > MAX_BURST || frames < burst) {
        fprintf(stderr, "ringtx: BURST must be 1..%d and FRAMES >= BURST\n", MAX_BURST);
        return 2;
    }
    if (argc > 5) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(atoi(argv[5]), &set);
        if (sched_setaffinity(0, sizeof set, &set) < 0) die("sched_setaffinity");
    }
    build_frame();
    int s = packet_socket(ifindex);
    long failed = 0;
    double c0 = cpu_seconds(), w0 = wall_seconds();
    long sent = ring ? send_ring(s, frames, burst, &failed) : send_mmsg(s, frames, burst, &failed);
    double cpu = cpu_seconds() - c0, wall = wall_seconds() - w0;
    printf("{\"mode\": \"%s\", \"burst\": %d, \"frames\": %ld, \"failed\": %ld, "
           "\"cpu_s\": %.6f, \"seconds\": %.6f}\n", argv[2], burst, sent, failed, cpu, wall);
    return 0;
}
