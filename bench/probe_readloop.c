/* The workload of bench/probe.sh: N read(2) calls from /dev/zero (N =
 * argv[1], default 1000000), of one byte each, or with K = argv[2] of
 * 1, 2, ... K bytes in turn (K keys for a probe that counts per size).
 * Prints the loop's own time on standard error, so that a probe tool's
 * start-up and exit are not counted:
 * "readloop: 1000000 reads in 412345678 ns". */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    long keys = argc > 2 ? atol(argv[2]) : 1;
    if (keys < 1 || keys > 4096) {
        fprintf(stderr, "readloop: keys must be 1 to 4096\n");
        return 1;
    }
    int fd = open("/dev/zero", O_RDONLY);
    if (fd < 0) {
        perror("readloop: /dev/zero");
        return 1;
    }
    static char buf[4096];
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) {
        long size = i % keys + 1;
        if (read(fd, buf, size) != size) {
            perror("readloop: read");
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    long long ns = (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
    fprintf(stderr, "readloop: %ld reads in %lld ns\n", n, ns);
    return 0;
}
