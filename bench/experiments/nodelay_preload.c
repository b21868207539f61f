/*
 * An experiment, not part of the product: an LD_PRELOAD library that sets TCP_NODELAY on every socket a process
 * accept()s. bench/run.sh builds it (if a C compiler is present) and the "variants" phase runs the gateway with it,
 * to show what setting TCP_NODELAY on the gateway's accepted client connections would change, without editing
 * src/. (axum 0.8's `serve` leaves Nagle's algorithm on; the fix in the gateway itself is a one-liner, see
 * bench/README.md.)
 *
 *   cc -O2 -shared -fPIC -o nodelay_preload.so nodelay_preload.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static void nodelay(int fd) {
    if (fd >= 0) {
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
}

int accept4(int s, struct sockaddr *addr, socklen_t *len, int flags) {
    static int (*real)(int, struct sockaddr *, socklen_t *, int);
    if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
    int fd = real(s, addr, len, flags);
    nodelay(fd);
    return fd;
}

int accept(int s, struct sockaddr *addr, socklen_t *len) {
    static int (*real)(int, struct sockaddr *, socklen_t *);
    if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
    int fd = real(s, addr, len);
    nodelay(fd);
    return fd;
}
