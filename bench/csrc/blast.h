/* What the bench's load helpers (udpblast.c, rawblast.c) share: a monotonic clock,
 * errors that end the program, and a bounded life. Each includes it after defining
 * TOOL, its name for messages; bench/cbuild.py builds a helper again when it changes.
 *
 * setup_signals(): SIGTERM, SIGINT and SIGALRM (after max_seconds) set ``stop``
 * without SA_RESTART, so a blocking call returns EINTR and the loop ends; the
 * process gets SIGTERM when its parent dies (PR_SET_PDEATHSIG). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig) { (void)sig; stop = 1; }

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *what) {
    fprintf(stderr, TOOL ": %s: %s\n", what, strerror(errno));
    exit(2);
}

static void setup_signals(double max_seconds) {
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    alarm((unsigned)(max_seconds + 0.999));
}
