/* minifwd: the reference for the TAP limit. It forwards every frame read on
 * one TAP to the other, one read() and one write() per frame, no lookups.
 *
 *   minifwd [--vnet] TAP_A TAP_B
 *
 * Creates (or attaches to) the two TAP devices, prints "ready", then forwards
 * until SIGTERM/SIGINT or until its parent dies. With --vnet the TAPs carry a
 * virtio-net header and accept checksum and TCP segmentation offloads, so
 * frames of up to 64 KB cross in one read and are written back unchanged with
 * their header (the kernel segments them on the far side).
 * On exit prints {"frames_ab","frames_ba","write_errors"} on stdout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <unistd.h>

#define VNET_HDR_LEN 12
#define BUFSIZE (VNET_HDR_LEN + 65536)
#define DRAIN 64            /* frames read from one TAP before looking at the other */

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static int open_tap(const char *name, int vnet) {
    struct ifreq ifr;
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) { perror("minifwd: /dev/net/tun"); exit(2); }
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0);
    if (strlen(name) >= IFNAMSIZ) { fprintf(stderr, "minifwd: name too long: %s\n", name); exit(2); }
    strcpy(ifr.ifr_name, name);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) { perror("minifwd: TUNSETIFF"); exit(2); }
    if (vnet) {
        int hdr = VNET_HDR_LEN;
        unsigned offloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
        if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) { perror("minifwd: TUNSETVNETHDRSZ"); exit(2); }
        if (ioctl(fd, TUNSETOFFLOAD, offloads) < 0) { perror("minifwd: TUNSETOFFLOAD"); exit(2); }
    }
    return fd;
}

int main(int argc, char **argv) {
    int vnet = argc == 4 && !strcmp(argv[1], "--vnet");
    if (argc != 3 + vnet) {
        fprintf(stderr, "usage: minifwd [--vnet] TAP_A TAP_B\n");
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    prctl(PR_SET_PDEATHSIG, SIGTERM);

    int fd[2] = {open_tap(argv[1 + vnet], vnet), open_tap(argv[2 + vnet], vnet)};
    static unsigned char buf[BUFSIZE];
    uint64_t frames[2] = {0, 0}, write_errors = 0;
    printf("ready\n");
    fflush(stdout);

    struct pollfd p[2] = {{.fd = fd[0], .events = POLLIN}, {.fd = fd[1], .events = POLLIN}};
    while (!stop) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            perror("minifwd: poll");
            return 2;
        }
        for (int side = 0; side < 2; side++) {
            if (!(p[side].revents & POLLIN)) continue;
            for (int k = 0; k < DRAIN; k++) {
                ssize_t n = read(fd[side], buf, sizeof buf);
                if (n <= 0) break;                     /* EAGAIN: this TAP is empty */
                if (write(fd[1 - side], buf, (size_t)n) != n) write_errors++;
                else frames[side]++;
            }
        }
    }
    printf("{\"frames_ab\": %llu, \"frames_ba\": %llu, \"write_errors\": %llu}\n",
           (unsigned long long)frames[0], (unsigned long long)frames[1],
           (unsigned long long)write_errors);
    return 0;
}
