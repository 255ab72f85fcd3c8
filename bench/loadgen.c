/* Open-loop HTTP/1.1 load for bench/serve_load.py, in C so that the client takes little of the
 * CPU it shares with the server (as wrk does; the Python client spends 0.14-0.20 ms a request).
 *
 *   loadgen PORT RATE SECONDS CONNECTIONS PATHS OUT
 *
 * Sends RATE*SECONDS requests, request i due at start + i/RATE whether or not earlier ones were
 * answered, over CONNECTIONS keep-alive connections to 127.0.0.1:PORT opened up front, each
 * carrying one request at a time (the one idle longest takes the next request; when none is
 * idle a request waits, and its wait counts). PATHS holds one request path a line, used in
 * turn. OUT receives, per request, its latency in seconds from when it was due (float64, NaN
 * when it failed), then its status (int64, -1 when the connection failed), then when it was
 * written and when its answer arrived, in seconds from when it was due (float64 each): arrival
 * is the kernel's receive timestamp of the answer's last bytes, so that the latency splits into
 * the client's delay before writing, the server's part and the client's delay before reading
 * (the client shares the CPUs with the server and is not always running when it should). Last
 * comes the moment the first request was due (float64, CLOCK_MONOTONIC seconds). Afterwards
 * each connection asks GET /health, and the "process" it names is printed, one line a
 * connection. Linux only (epoll, timerfd, SO_TIMESTAMPING). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int fd;
    long request; /* in flight, or -1 */
    char *buf;
    size_t len, cap;
} Conn;

static int port;
static double realtime_ahead; /* CLOCK_REALTIME minus CLOCK_MONOTONIC: receive timestamps */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void fail(const char *what) {
    perror(what);
    exit(2);
}

static int connect_one(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) fail("connect");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int stamps = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &stamps, sizeof stamps);
    return fd;
}

/* The length of the complete response at the start of c->buf, 0 while it is incomplete, -1
 * when it cannot be read; its status in *status. */
static long complete(Conn *c, long *status) {
    char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (!end) return 0;
    long head = end - c->buf + 4, length = -1;
    for (char *line = memchr(c->buf, '\n', head); line && line < end; line = memchr(line, '\n', end - line)) {
        line++;
        if (strncasecmp(line, "content-length:", 15) == 0) length = strtol(line + 15, NULL, 10);
    }
    if (length < 0 || c->len < 12) return -1;
    *status = strtol(c->buf + 9, NULL, 10);
    return (long)c->len >= head + length ? head + length : 0;
}

/* Reads what the socket has; the length of the whole response at the start of c->buf once it
 * is in (its status in *status), 0 while it is not, -1 when the connection failed. In *at,
 * when the bytes read reached the socket (CLOCK_MONOTONIC): the kernel's timestamp, or now
 * where it gives none. */
static long receive(Conn *c, long *status, double *at) {
    for (;;) {
        if (c->cap - c->len < 16384) {
            c->cap *= 2;
            if (!(c->buf = realloc(c->buf, c->cap))) fail("realloc");
        }
        char control[256];
        struct iovec into = {c->buf + c->len, c->cap - c->len};
        struct msghdr message = {.msg_iov = &into, .msg_iovlen = 1, .msg_control = control,
                                 .msg_controllen = sizeof control};
        ssize_t got = recvmsg(c->fd, &message, 0);
        if (got > 0) {
            c->len += got;
            *at = now();
            for (struct cmsghdr *h = CMSG_FIRSTHDR(&message); h; h = CMSG_NXTHDR(&message, h))
                if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_TIMESTAMPING) {
                    struct timespec *stamp = ((struct scm_timestamping *)CMSG_DATA(h))->ts;
                    if (stamp->tv_sec) *at = stamp->tv_sec + stamp->tv_nsec * 1e-9 - realtime_ahead;
                }
            continue;
        }
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        return -1; /* closed or failed */
    }
    return complete(c, status);
}

static void consume(Conn *c, long used) {
    memmove(c->buf, c->buf + used, c->len - used);
    c->len -= used;
}

static void nonblocking(int fd) {
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static int in_idle(const int *idle, int head, int n_idle, int cap, int which) {
    for (int k = 0; k < n_idle; k++)
        if (idle[(head + k) % cap] == which) return 1;
    return 0;
}

static int send_all(int fd, const char *data, size_t len) {
    while (len) {
        ssize_t put = write(fd, data, len);
        if (put <= 0) return -1;
        data += put;
        len -= put;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: loadgen PORT RATE SECONDS CONNECTIONS PATHS OUT\n");
        return 2;
    }
    port = atoi(argv[1]);
    struct timespec real, mono;
    clock_gettime(CLOCK_REALTIME, &real);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    realtime_ahead = (real.tv_sec - mono.tv_sec) + (real.tv_nsec - mono.tv_nsec) * 1e-9;
    double rate = atof(argv[2]), seconds = atof(argv[3]);
    int n_conns = atoi(argv[4]);
    long n = (long)(rate * seconds);

    /* the requests, built once */
    FILE *f = fopen(argv[5], "r");
    if (!f) fail(argv[5]);
    char **requests = NULL, line[4096];
    size_t *lengths = NULL;
    long n_paths = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!*line) continue;
        requests = realloc(requests, (n_paths + 1) * sizeof *requests);
        lengths = realloc(lengths, (n_paths + 1) * sizeof *lengths);
        lengths[n_paths] = asprintf(&requests[n_paths],
                                    "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", line);
        n_paths++;
    }
    fclose(f);
    if (!n_paths || n <= 0 || n_conns <= 0) {
        fprintf(stderr, "loadgen: nothing to send\n");
        return 2;
    }

    int ep = epoll_create1(0), timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    if (ep < 0 || timer < 0) fail("epoll");
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)n_conns};
    epoll_ctl(ep, EPOLL_CTL_ADD, timer, &ev);
    Conn *conns = calloc(n_conns, sizeof *conns);
    int *idle = malloc(n_conns * sizeof *idle), idle_head = 0, n_idle = 0;
    for (int i = 0; i < n_conns; i++) {
        conns[i] = (Conn){.fd = connect_one(), .request = -1, .cap = 65536};
        conns[i].buf = malloc(conns[i].cap);
        ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = (uint64_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
        idle[n_idle++] = i;
    }
    /* non-blocking reads from here on; a small request written on an idle connection fits */
    for (int i = 0; i < n_conns; i++) nonblocking(conns[i].fd);

    double *latency = malloc(n * sizeof *latency), *written = malloc(n * sizeof *written),
           *arrived = malloc(n * sizeof *arrived);
    int64_t *status = malloc(n * sizeof *status);
    long *waiting = malloc(n * sizeof *waiting), wait_head = 0, wait_tail = 0;
    for (long i = 0; i < n; i++) latency[i] = written[i] = arrived[i] = NAN, status[i] = 0;

    double start = now() + 0.1;
    long next = 0, done = 0;
    struct epoll_event events[64];
    while (done < n) {
        /* every request now due: onto an idle connection, or into the queue */
        double t = now();
        while (next < n && start + next / rate <= t) waiting[wait_tail++] = next++;
        while (wait_head < wait_tail && n_idle) {
            long r = waiting[wait_head++];
            Conn *c = &conns[idle[idle_head]];
            idle_head = (idle_head + 1) % n_conns, n_idle--;
            c->request = r;
            written[r] = now() - (start + r / rate);
            if (send_all(c->fd, requests[r % n_paths], lengths[r % n_paths]) < 0) {
                status[r] = -1, done++, c->request = -1; /* the connection is dropped below */
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                c->fd = -1;
            }
        }
        if (next < n) {
            double due = start + next / rate;
            struct itimerspec at = {.it_value = {(time_t)due, (long)((due - (time_t)due) * 1e9)}};
            timerfd_settime(timer, TFD_TIMER_ABSTIME, &at, NULL);
        }
        int ready = epoll_wait(ep, events, 64, 1000);
        if (ready < 0 && errno != EINTR) fail("epoll_wait");
        for (int e = 0; e < ready; e++) {
            uint64_t which = events[e].data.u64;
            if (which == (uint64_t)n_conns) {
                uint64_t ticks;
                if (read(timer, &ticks, sizeof ticks) < 0) { /* spurious wake-up */ }
                continue;
            }
            Conn *c = &conns[which];
            double received_at = 0;
            long code = 0, got = receive(c, &code, &received_at), busy = c->request >= 0;
            if (got == 0) continue;
            if (busy) {
                double due = start + c->request / rate;
                latency[c->request] = got > 0 ? now() - due : NAN;
                arrived[c->request] = got > 0 ? received_at - due : NAN;
                status[c->request] = got > 0 ? code : -1;
                done++;
                c->request = -1;
            }
            if (got > 0) {
                consume(c, got);
            } else { /* closed by the server: a new connection takes its place */
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                c->fd = -1;
            }
            if (busy && c->fd >= 0) idle[(idle_head + n_idle++) % n_conns] = (int)which;
        }
        /* connections that failed come back as new ones, idle */
        for (int i = 0; i < n_conns; i++) {
            if (conns[i].fd >= 0) continue;
            conns[i].fd = connect_one();
            conns[i].len = 0;
            nonblocking(conns[i].fd);
            ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = (uint64_t)i};
            epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
            if (!in_idle(idle, idle_head, n_idle, n_conns, i))
                idle[(idle_head + n_idle++) % n_conns] = i;
        }
        if (now() > start + n / rate + 30) {
            fprintf(stderr, "loadgen: %ld requests unanswered 30 s after the last was due\n",
                    n - done);
            break;
        }
    }

    FILE *out = fopen(argv[6], "wb");
    if (!out || fwrite(latency, sizeof *latency, n, out) != (size_t)n ||
        fwrite(status, sizeof *status, n, out) != (size_t)n ||
        fwrite(written, sizeof *written, n, out) != (size_t)n ||
        fwrite(arrived, sizeof *arrived, n, out) != (size_t)n ||
        fwrite(&start, sizeof start, 1, out) != 1 || fclose(out))
        fail(argv[6]);

    /* which server process holds each connection (-1 where it does not say within 5 s) */
    static const char health[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    double give_up = now() + 5;
    for (int i = 0; i < n_conns; i++) {
        Conn *c = &conns[i];
        long code = 0, got = -1;
        double ignored;
        if (c->request < 0 && send_all(c->fd, health, sizeof health - 1) == 0)
            while ((got = receive(c, &code, &ignored)) == 0 && now() < give_up) usleep(100);
        char *at = got > 0 ? memmem(c->buf, got, "\"process\":", 10) : NULL;
        printf("%ld\n", at ? strtol(at + 10, NULL, 10) : -1L);
    }
    return 0;
}
