/* udpblast: the small-packet load of the bench suite, in C so that the
 * generator and the receiver are not what the bench measures.
 *
 *   udpblast send DST PORT SIZE SECONDS   sendmmsg bursts for SECONDS, prints {"sent","elapsed"}
 *   udpblast sink BIND PORT MAXSECONDS    recvmmsg until SIGTERM/SIGINT or MAXSECONDS, prints {"received","bytes"}
 *   udpblast echo BIND PORT MAXSECONDS    answers every datagram with itself
 *   udpblast rtt  DST PORT SIZE COUNT     COUNT request/replies, prints RTT statistics in microseconds
 *
 * sink and echo print "ready" once bound. Every mode is bounded in time and
 * dies with its parent (PR_SET_PDEATHSIG). Output is one JSON line on stdout.
 */
#define _GNU_SOURCE
#define TOOL "udpblast"
#include <arpa/inet.h>
#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "blast.h"

#define BURST 256
#define MAXFRAME 2048

static struct sockaddr_in parse_addr(const char *ip, const char *port) {
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
    if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) {
        fprintf(stderr, "udpblast: bad IPv4 address %s\n", ip);
        exit(2);
    }
    return sa;
}

static int udp_socket(int bufsize) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) die("socket");
    /* FORCE variants: we run as root, so wmem_max/rmem_max do not cap these */
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsize, sizeof bufsize);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufsize, sizeof bufsize);
    return fd;
}

static int do_send(struct sockaddr_in dst, int size, double seconds) {
    static char payload[MAXFRAME];
    struct mmsghdr msgs[BURST];
    struct iovec iov[BURST];
    if (size < 0 || size > MAXFRAME || seconds <= 0) {
        fprintf(stderr, "udpblast: size must be 0..%d and seconds > 0\n", MAXFRAME);
        return 2;
    }
    int fd = udp_socket(4 << 20);
    if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0) die("connect");
    for (int i = 0; i < BURST; i++) {
        iov[i].iov_base = payload;
        iov[i].iov_len = (size_t)size;
        memset(&msgs[i], 0, sizeof msgs[i]);
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    setup_signals(seconds + 5);
    uint64_t sent = 0, errors = 0;
    double start = now(), end = start + seconds, t = start;
    while (!stop && (t = now()) < end) {
        for (int k = 0; k < 16; k++) {          /* check the clock every 16 bursts */
            int n = sendmmsg(fd, msgs, BURST, 0);
            if (n < 0) {
                if (errno == EINTR) break;
                errors++;                      /* ENOBUFS, ECONNREFUSED: count, go on */
                continue;
            }
            sent += (uint64_t)n;
        }
    }
    printf("{\"sent\": %llu, \"errors\": %llu, \"elapsed\": %.6f}\n",
           (unsigned long long)sent, (unsigned long long)errors, now() - start);
    return 0;
}

static int do_sink(struct sockaddr_in addr, double max_seconds, int echo) {
    static char bufs[BURST][MAXFRAME];
    struct mmsghdr msgs[BURST];
    struct iovec iov[BURST];
    struct sockaddr_in from[BURST];
    int fd = udp_socket(32 << 20);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
    setup_signals(max_seconds);
    printf("ready\n");
    fflush(stdout);
    uint64_t received = 0, bytes = 0;
    while (!stop) {
        for (int i = 0; i < BURST; i++) {
            iov[i].iov_base = bufs[i];
            iov[i].iov_len = MAXFRAME;
            memset(&msgs[i], 0, sizeof msgs[i]);
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = &from[i];
            msgs[i].msg_hdr.msg_namelen = sizeof from[i];
        }
        int n = recvmmsg(fd, msgs, echo ? 1 : BURST, MSG_WAITFORONE, NULL);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("recvmmsg");
        }
        for (int i = 0; i < n; i++) {
            bytes += msgs[i].msg_len;
            if (echo)
                sendto(fd, bufs[i], msgs[i].msg_len, 0, (struct sockaddr *)&from[i],
                       msgs[i].msg_hdr.msg_namelen);
        }
        received += (uint64_t)n;
    }
    printf("{\"received\": %llu, \"bytes\": %llu}\n", (unsigned long long)received,
           (unsigned long long)bytes);
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int do_rtt(struct sockaddr_in dst, int size, int count) {
    char req[MAXFRAME] = {0}, rep[MAXFRAME];
    double *rtt = calloc((size_t)count, sizeof *rtt);
    if (size < 8 || size > MAXFRAME || count <= 0) {
        fprintf(stderr, "udpblast: rtt size must be 8..%d and count > 0\n", MAXFRAME);
        return 2;
    }
    int fd = udp_socket(1 << 20);
    if (!rtt) die("calloc");
    if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0) die("connect");
    setup_signals(count * 1.0 + 30);          /* at most 1 s per lost request */
    int got = 0, lost = 0, warmup = 50;
    for (int i = -warmup; i < count && !stop; i++) {
        uint64_t seq = (uint64_t)(i + warmup);
        memcpy(req, &seq, sizeof seq);
        double t0 = now();
        if (send(fd, req, (size_t)size, 0) < 0) {
            if (errno == EINTR) break;
            die("send");
        }
        for (;;) {                            /* skip late replies to earlier requests */
            struct pollfd p = {.fd = fd, .events = POLLIN};
            int left_ms = (int)((t0 + 1.0 - now()) * 1000);
            if (left_ms <= 0 || poll(&p, 1, left_ms) <= 0) {
                if (i >= 0) lost++;
                break;
            }
            ssize_t n = recv(fd, rep, sizeof rep, 0);
            if (n >= 8 && memcmp(rep, &seq, sizeof seq) == 0) {
                if (i >= 0) rtt[got++] = (now() - t0) * 1e6;
                break;
            }
        }
    }
    qsort(rtt, (size_t)got, sizeof *rtt, cmp_double);
    double sum = 0;
    for (int i = 0; i < got; i++) sum += rtt[i];
    if (got == 0) {
        printf("{\"count\": 0, \"lost\": %d}\n", lost);
        return 1;
    }
    printf("{\"count\": %d, \"lost\": %d, \"min_us\": %.2f, \"median_us\": %.2f, "
           "\"p99_us\": %.2f, \"max_us\": %.2f, \"mean_us\": %.2f}\n",
           got, lost, rtt[0], rtt[got / 2], rtt[(int)(got * 0.99) < got ? (int)(got * 0.99) : got - 1],
           rtt[got - 1], sum / got);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 6 && !strcmp(argv[1], "send"))
        return do_send(parse_addr(argv[2], argv[3]), atoi(argv[4]), atof(argv[5]));
    if (argc == 5 && !strcmp(argv[1], "sink"))
        return do_sink(parse_addr(argv[2], argv[3]), atof(argv[4]), 0);
    if (argc == 5 && !strcmp(argv[1], "echo"))
        return do_sink(parse_addr(argv[2], argv[3]), atof(argv[4]), 1);
    if (argc == 6 && !strcmp(argv[1], "rtt"))
        return do_rtt(parse_addr(argv[2], argv[3]), atoi(argv[4]), atoi(argv[5]));
    fprintf(stderr, "usage: udpblast send DST PORT SIZE SECONDS | sink BIND PORT MAXSECONDS |\n"
                    "       echo BIND PORT MAXSECONDS | rtt DST PORT SIZE COUNT\n");
    return 2;
}
