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
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tapfwd.h"

#define BUFSIZE (VNET_HDR_LEN + 65536)
#define DRAIN 64            /* frames read from one TAP before looking at the other */


int main(int argc, char **argv) {
    int vnet = argc == 4 && !strcmp(argv[1], "--vnet");
    if (argc != 3 + vnet) {
        fprintf(stderr, "usage: minifwd [--vnet] TAP_A TAP_B\n");
        return 2;
    }
    forwarder_signals();

    int fd[2] = {open_tap("minifwd", argv[1 + vnet], vnet), open_tap("minifwd", argv[2 + vnet], vnet)};
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
