/* delaylink: a point-to-point link between two network namespaces with a fixed one-way
 * delay (this kernel has no netem).
 *
 *   delaylink --ns-a /run/netns/A --dev-a NAME --ns-b /run/netns/B --dev-b NAME
 *             --delay-us 10000 [--tick-us 500] [--mtu 1500] [--slots 16384] --ready FILE
 *
 * Creates a TUN device (IFF_TUN|IFF_NO_PI) in each namespace, writes FILE once both exist
 * (the caller then gives them addresses, a long txqueuelen, and brings them up), and
 * forwards every packet read from one device to the other after --delay-us. Delays are
 * constant, so each direction is a FIFO ring: no reordering. A full ring drops (like a
 * router queue); the drop count and packet counts are printed to stderr on SIGTERM/SIGINT.
 * No bandwidth limit is applied.
 *
 * A real link costs the host no CPU; this one should cost as little as it can, since it
 * shares the machine with the endpoints it links. So it does not wake for every packet:
 * each pass reads what the devices hold, writes what is due, and sleeps until the next
 * packet is due or one tick has passed. Arrivals wait in the device queue (hence the long
 * txqueuelen) for up to a tick before they are read and stamped; the delay is shortened by
 * half a tick so that the mean stays --delay-us.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  int fd;
  unsigned char *data; /* slots * slot_size */
  uint16_t *len;
  int64_t *due;
  size_t head, tail, count;
  uint64_t packets, drops, bytes;
} Queue; /* packets read from fd, waiting to be written to the other device */

static size_t slots = 16384, slot_size;
static volatile sig_atomic_t stop;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static void die(const char *what) {
  fprintf(stderr, "delaylink: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int open_tun_in(const char *ns_path, const char *name) {
  int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  int ns = open(ns_path, O_RDONLY | O_CLOEXEC);
  if (self < 0 || ns < 0) die(ns_path);
  if (setns(ns, CLONE_NEWNET) != 0) die("setns");
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) die("/dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) die("TUNSETIFF");
  if (setns(self, CLONE_NEWNET) != 0) die("setns back");
  close(self);
  close(ns);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

static void init_queue(Queue *q, int fd) {
  memset(q, 0, sizeof *q);
  q->fd = fd;
  q->data = malloc(slots * slot_size);
  q->len = calloc(slots, sizeof *q->len);
  q->due = calloc(slots, sizeof *q->due);
  if (!q->data || !q->len || !q->due) die("malloc");
}

/* Reads what is available (bounded per call so the other direction is not starved). */
static void read_some(Queue *q, int64_t delay_ns) {
  unsigned char scratch[65536];
  for (int i = 0; i < 4096; i++) {
    unsigned char *dst = q->count < slots ? q->data + q->tail * slot_size : scratch;
    ssize_t n = read(q->fd, dst, q->count < slots ? slot_size : sizeof scratch);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      die("read tun");
    }
    if (q->count == slots || (size_t)n > slot_size) {
      q->drops++;
      continue;
    }
    q->len[q->tail] = (uint16_t)n;
    q->due[q->tail] = now_ns() + delay_ns;
    q->tail = (q->tail + 1) % slots;
    q->count++;
  }
}

/* Writes every packet that is due to out_fd. */
static void flush_due(Queue *q, int out_fd, int64_t t) {
  while (q->count > 0 && q->due[q->head] <= t) {
    ssize_t n = write(out_fd, q->data + q->head * slot_size, q->len[q->head]);
    if (n < 0 && errno != EAGAIN && errno != EINTR && errno != EIO) die("write tun");
    if (n > 0) {
      q->packets++;
      q->bytes += (uint64_t)n;
    } else {
      q->drops++;
    }
    q->head = (q->head + 1) % slots;
    q->count--;
  }
}

int main(int argc, char **argv) {
  const char *ns_a = NULL, *dev_a = NULL, *ns_b = NULL, *dev_b = NULL, *ready = NULL;
  long delay_us = 10000, tick_us = 500, mtu = 1500;
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *a = argv[i], *v = argv[i + 1];
    if (!strcmp(a, "--ns-a")) ns_a = v;
    else if (!strcmp(a, "--dev-a")) dev_a = v;
    else if (!strcmp(a, "--ns-b")) ns_b = v;
    else if (!strcmp(a, "--dev-b")) dev_b = v;
    else if (!strcmp(a, "--delay-us")) delay_us = atol(v);
    else if (!strcmp(a, "--tick-us")) tick_us = atol(v);
    else if (!strcmp(a, "--mtu")) mtu = atol(v);
    else if (!strcmp(a, "--slots")) slots = (size_t)atol(v);
    else if (!strcmp(a, "--ready")) ready = v;
    else {
      fprintf(stderr, "delaylink: unknown option %s\n", a);
      return 2;
    }
  }
  if (!ns_a || !dev_a || !ns_b || !dev_b || !ready || mtu < 576 || mtu > 65535 || slots < 16 ||
      tick_us < 1 || tick_us > delay_us) {
    fprintf(stderr, "usage: delaylink --ns-a P --dev-a N --ns-b P --dev-b N --delay-us US "
                    "[--tick-us T <= US] [--mtu M] [--slots S] --ready FILE\n");
    return 2;
  }
  slot_size = (size_t)mtu + 64;
  prctl(PR_SET_TIMERSLACK, 1UL); /* wake-ups within microseconds of the due time */
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);

  Queue ab, ba; /* ab: read from A, written to B */
  init_queue(&ab, open_tun_in(ns_a, dev_a));
  init_queue(&ba, open_tun_in(ns_b, dev_b));
  FILE *f = fopen(ready, "w");
  if (!f) die(ready);
  fprintf(f, "%d\n", (int)getpid());
  fclose(f);

  const int64_t tick_ns = (int64_t)tick_us * 1000;
  const int64_t delay_ns = (int64_t)delay_us * 1000 - tick_ns / 2;
  while (!stop) {
    read_some(&ab, delay_ns);
    read_some(&ba, delay_ns);
    int64_t t = now_ns();
    flush_due(&ab, ba.fd, t);
    flush_due(&ba, ab.fd, t);
    struct pollfd p[2] = {{ab.fd, POLLIN, 0}, {ba.fd, POLLIN, 0}};
    if (!ab.count && !ba.count) { /* idle link: sleep until a packet arrives */
      if (ppoll(p, 2, NULL, NULL) < 0 && errno != EINTR) die("ppoll");
      continue;
    }
    int64_t next = ab.count ? ab.due[ab.head] : INT64_MAX;
    if (ba.count && ba.due[ba.head] < next) next = ba.due[ba.head];
    int64_t wait = next - now_ns();
    if (wait > tick_ns) wait = tick_ns;
    if (wait <= 0) continue;
    struct timespec ts = {wait / 1000000000, wait % 1000000000};
    if (nanosleep(&ts, NULL) < 0 && errno != EINTR) die("nanosleep");
  }
  fprintf(stderr, "delaylink: a->b %llu packets %llu bytes %llu drops; b->a %llu packets %llu bytes %llu drops\n",
          (unsigned long long)ab.packets, (unsigned long long)ab.bytes, (unsigned long long)ab.drops,
          (unsigned long long)ba.packets, (unsigned long long)ba.bytes, (unsigned long long)ba.drops);
  return 0;
}
