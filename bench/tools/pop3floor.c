/* pop3floor: the benchmark's "raw floor" POP3 client (OpenSSL, single thread).
 *
 *   pop3floor --host H --port P --user U --pass PW --ca CAFILE --mode retr|uidl|list|dele
 *             [--window N] [--first K] [--count N]
 *
 * Implicit TLS, certificate and address verified against CAFILE, USER/PASS, then:
 *   retr  STAT, then RETR 1..N with up to --window (default 256) commands in flight; the
 *         data is parsed just enough to find each reply's end (CRLF.CRLF) and discarded
 *   uidl  one UIDL listing           list  one LIST listing
 *   dele  STAT, then DELE 1..N pipelined like retr (the server commits them at QUIT)
 * then QUIT, waiting for its +OK (for dele that is when Dovecot unlinks the files).
 * Prints one JSON line: mode, messages, bytes (octets read after TLS), seconds (after
 * connect + login, and total). Exit 1 on any error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static SSL *ssl;
static unsigned char rbuf[256 * 1024];
static size_t rpos, rlen;
static uint64_t bytes_in;

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "pop3floor: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  ERR_print_errors_fp(stderr);
  exit(1);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fill(void) {
  int n = SSL_read(ssl, rbuf, sizeof rbuf);
  if (n <= 0) die("read failed or connection closed (SSL error %d)", SSL_get_error(ssl, n));
  rpos = 0;
  rlen = (size_t)n;
  bytes_in += (uint64_t)n;
}

static void send_all(const char *buf, size_t len) {
  while (len > 0) {
    int n = SSL_write(ssl, buf, (int)len);
    if (n <= 0) die("write failed (SSL error %d)", SSL_get_error(ssl, n));
    buf += n;
    len -= (size_t)n;
  }
}

/* Reads one status line into line (NUL-terminated, CRLF stripped); returns 1 for +OK. */
static int read_status(char *line, size_t cap) {
  size_t n = 0;
  for (;;) {
    if (rpos == rlen) fill();
    unsigned char c = rbuf[rpos++];
    if (c == '\n') break;
    if (n + 1 < cap) line[n++] = (char)c;
  }
  if (n > 0 && line[n - 1] == '\r') n--;
  line[n] = 0;
  return strncmp(line, "+OK", 3) == 0;
}

/* Skips a multi-line body up to and including the terminating ".CRLF" line; counts lines. */
static uint64_t skip_body(void) {
  uint64_t lines = 0;
  int at_start = 1; /* at the start of a line */
  for (;;) {
    if (rpos == rlen) fill();
    if (at_start) {
      if (rbuf[rpos] == '.') {
        /* ".\r\n" ends the reply; "." + anything else is a stuffed line */
        rpos++;
        if (rpos == rlen) fill();
        if (rbuf[rpos] == '\r') {
          rpos++;
          if (rpos == rlen) fill();
          if (rbuf[rpos] == '\n') {
            rpos++;
            return lines;
          }
        } else if (rbuf[rpos] == '\n') { /* tolerate ".\n" */
          rpos++;
          return lines;
        }
      }
      at_start = 0;
    }
    unsigned char *nl = memchr(rbuf + rpos, '\n', rlen - rpos);
    if (nl == NULL) {
      rpos = rlen;
    } else {
      rpos = (size_t)(nl - rbuf) + 1;
      at_start = 1;
      lines++;
    }
  }
}

static void command(const char *cmd, char *line, size_t cap) {
  send_all(cmd, strlen(cmd));
  if (!read_status(line, cap)) die("%.*s failed: %s", (int)strcspn(cmd, "\r"), cmd, line);
}

int main(int argc, char **argv) {
  const char *host = NULL, *port = "995", *user = NULL, *pass = NULL, *ca = NULL, *mode = "retr";
  long window = 256, first = 1, count = -1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (v == NULL) die("%s needs a value", a);
    if (!strcmp(a, "--host")) host = v;
    else if (!strcmp(a, "--port")) port = v;
    else if (!strcmp(a, "--user")) user = v;
    else if (!strcmp(a, "--pass")) pass = v;
    else if (!strcmp(a, "--ca")) ca = v;
    else if (!strcmp(a, "--mode")) mode = v;
    else if (!strcmp(a, "--window")) window = atol(v);
    else if (!strcmp(a, "--first")) first = atol(v);
    else if (!strcmp(a, "--count")) count = atol(v);
    else die("unknown option %s", a);
    i++;
  }
  if (!host || !user || !pass || !ca) die("--host, --user, --pass and --ca are required");
  if (window < 1) window = 1;

  double t0 = now();
  struct addrinfo hints = {0}, *ai;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host, port, &hints, &ai) != 0) die("cannot resolve %s", host);
  int fd = socket(ai->ai_family, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) die("connect %s:%s: %s", host, port, strerror(errno));
  freeaddrinfo(ai);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) die("cannot load CA %s", ca);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  ssl = SSL_new(ctx);
  X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
  if (X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1) { /* not an address: check the name */
    X509_VERIFY_PARAM_set1_host(param, host, 0);
    SSL_set_tlsext_host_name(ssl, host);
  }
  SSL_set_fd(ssl, fd);
  if (SSL_connect(ssl) != 1) die("TLS handshake with %s failed", host);

  char line[1024], cmd[600];
  if (!read_status(line, sizeof line)) die("greeting: %s", line);
  snprintf(cmd, sizeof cmd, "USER %s\r\n", user);
  command(cmd, line, sizeof line);
  snprintf(cmd, sizeof cmd, "PASS %s\r\n", pass);
  command(cmd, line, sizeof line);
  double t1 = now();

  uint64_t messages = 0;
  if (!strcmp(mode, "uidl") || !strcmp(mode, "list")) {
    command(!strcmp(mode, "uidl") ? "UIDL\r\n" : "LIST\r\n", line, sizeof line);
    messages = skip_body();
  } else if (!strcmp(mode, "retr") || !strcmp(mode, "dele")) {
    command("STAT\r\n", line, sizeof line);
    long total = atol(line + 4);
    long last = count < 0 ? total : first + count - 1;
    if (last > total) last = total;
    int retr = !strcmp(mode, "retr");
    long next = first, done = first;
    char batch[64 * 32];
    while (done <= last) {
      /* Top up the window in batches of up to 64 commands, one write each. */
      while (next <= last && next - done < window) {
        size_t len = 0;
        for (int k = 0; k < 64 && next <= last && next - done < window; k++, next++)
          len += (size_t)snprintf(batch + len, sizeof batch - len, retr ? "RETR %ld\r\n" : "DELE %ld\r\n", next);
        send_all(batch, len);
      }
      if (!read_status(line, sizeof line)) die("%s %ld: %s", retr ? "RETR" : "DELE", done, line);
      if (retr) skip_body();
      messages++;
      done++;
    }
  } else {
    die("unknown --mode %s", mode);
  }
  double t2 = now();
  send_all("QUIT\r\n", 6);
  if (!read_status(line, sizeof line)) die("QUIT: %s", line);
  double t3 = now();
  SSL_shutdown(ssl);
  close(fd);
  printf("{\"mode\":\"%s\",\"messages\":%llu,\"bytes\":%llu,\"login_s\":%.4f,\"transfer_s\":%.4f,"
         "\"quit_s\":%.4f,\"total_s\":%.4f,\"tls\":\"%s\"}\n",
         mode, (unsigned long long)messages, (unsigned long long)bytes_in, t1 - t0, t2 - t1, t3 - t2,
         t3 - t0, SSL_get_version(ssl));
  return 0;
}
