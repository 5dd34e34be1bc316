/* What the bench's TAP forwarders (minifwd.c, urfwd.c) share.
 *
 * forwarder_signals(): SIGTERM and SIGINT set ``stop``; the process gets SIGTERM when
 * its parent dies (PR_SET_PDEATHSIG).
 *
 * open_tap(tool, name, vnet): create (or attach to) the TAP ``name``, non-blocking,
 * without packet information; with ``vnet`` its frames carry a 12-byte virtio-net
 * header and the kernel may hand it checksum-offloaded and TSO super-frames. Any
 * failure ends the program with status 2, the message prefixed with ``tool``. */
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>

#define VNET_HDR_LEN 12

static volatile sig_atomic_t stop;

static void on_signal(int sig) { (void)sig; stop = 1; }

static void forwarder_signals(void) {
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
}

static void tap_fail(const char *tool, const char *what) {
    fprintf(stderr, "%s: ", tool);
    perror(what);
    exit(2);
}

static int open_tap(const char *tool, const char *name, int vnet) {
    struct ifreq ifr;
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) tap_fail(tool, "/dev/net/tun");
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0);
    if (strlen(name) >= IFNAMSIZ) { fprintf(stderr, "%s: name too long: %s\n", tool, name); exit(2); }
    strcpy(ifr.ifr_name, name);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) tap_fail(tool, "TUNSETIFF");
    if (vnet) {
        int hdr = VNET_HDR_LEN;
        unsigned offloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
        if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) tap_fail(tool, "TUNSETVNETHDRSZ");
        if (ioctl(fd, TUNSETOFFLOAD, offloads) < 0) tap_fail(tool, "TUNSETOFFLOAD");
    }
    return fd;
}
