/* copycost: what a TCP sender's copy costs per byte, by how much it has in flight.
 *
 * A sender's write() copies its buffer (hot, 128 KB) into socket pages; a page is
 * written again only once everything on it was acknowledged, so the bytes in flight are
 * the working set its copies write into.  This program copies 64 KB chunks from a hot
 * source into a ring of WORKING_SET bytes, for SECONDS, on CPU WRITER_CPU, and prints the
 * median and the 10th percentile of nanoseconds per KB of the copies (per-chunk timing:
 * a chunk the scheduler interrupted is an outlier the median ignores).  With READER_CPU
 * >= 0 another thread on that CPU reads every chunk right after it is written (as a
 * switch's read() of the frame, or a receiver's, does), so the writer finds its lines
 * in the other core's cache when it comes round again.
 *
 *   copycost WORKING_SET SECONDS WRITER_CPU READER_CPU
 *   -> {"working_set": N, "reader": 0|1, "chunks": N, "ns_per_kb_median": X, "ns_per_kb_p10": Y}
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHUNK 65536
#define SOURCE (128 * 1024)
#define MAX_SAMPLES (1 << 22)

static unsigned char *ring, *source;
static size_t slots;
static _Atomic uint64_t written;        /* chunks written so far */
static _Atomic int done;
static volatile uint64_t sink;      /* keeps the reader's loads */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static int pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set);
}

static void *reader(void *arg)
{
    uint64_t next = 0;
    pin(*(int *)arg);
    while (!atomic_load(&done)) {
        uint64_t upto = atomic_load(&written);
        for (; next < upto; next++) {      /* read the chunk as a read() would copy it out */
            const uint64_t *p = (const uint64_t *)(ring + (next % slots) * CHUNK);
            uint64_t sum = 0;
            for (size_t k = 0; k < CHUNK / 8; k += 8)   /* one word per 64-byte line */
                sum += p[k];
            sink += sum;
        }
    }
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: copycost WORKING_SET SECONDS WRITER_CPU READER_CPU\n");
        return 2;
    }
    size_t ws = strtoull(argv[1], NULL, 10);
    double seconds = atof(argv[2]);
    int wcpu = atoi(argv[3]), rcpu = atoi(argv[4]);
    if (ws < CHUNK || seconds <= 0) {
        fprintf(stderr, "copycost: WORKING_SET >= %d and SECONDS > 0\n", CHUNK);
        return 2;
    }
    slots = ws / CHUNK;
    ring = aligned_alloc(4096, slots * CHUNK);
    source = aligned_alloc(4096, SOURCE);
    uint32_t *samples = malloc(sizeof(uint32_t) * MAX_SAMPLES);
    if (!ring || !source || !samples || pin(wcpu) != 0) {
        perror("copycost");
        return 1;
    }
    memset(ring, 1, slots * CHUNK);
    memset(source, 2, SOURCE);
    pthread_t thread;
    if (rcpu >= 0 && pthread_create(&thread, NULL, reader, &rcpu) != 0) {
        perror("pthread_create");
        return 1;
    }
    uint64_t end = now_ns() + (uint64_t)(seconds * 1e9), n = 0;
    while (n < MAX_SAMPLES) {
        unsigned char *dst = ring + (n % slots) * CHUNK;
        uint64_t t0 = now_ns();
        memcpy(dst, source + (n % 2) * CHUNK, CHUNK);
        uint64_t t1 = now_ns();
        samples[n++] = (uint32_t)(t1 - t0);
        atomic_store(&written, n);
        if (t1 >= end)
            break;
    }
    atomic_store(&done, 1);
    if (rcpu >= 0)
        pthread_join(thread, NULL);
    qsort(samples, n, sizeof *samples, cmp);
    printf("{\"working_set\": %zu, \"reader\": %d, \"chunks\": %llu, \"ns_per_kb_median\": %.1f, "
           "\"ns_per_kb_p10\": %.1f}\n", slots * CHUNK, rcpu >= 0, (unsigned long long)n,
           samples[n / 2] / 64.0, samples[n / 10] / 64.0);
    return 0;
}
