/* rtime: run a command and report its wall time, CPU and peak RSS as one JSON line.
 *
 *   rtime [--netns /run/netns/NAME] [--uid UID --gid GID] --out FILE -- COMMAND ARGS...
 *
 * Enters the network namespace (setns) and drops to UID/GID if asked, then forks and execs
 * COMMAND; wait4() gives its CPU time and peak RSS, including the children it waited for.
 * A small launcher matters: ru_maxrss survives execve, so a command forked from a big
 * process (Python) would report that process's size as its own peak.
 * Exit status: COMMAND's (128+signal if killed); 127 if it could not be started.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  const char *netns = NULL, *out = NULL;
  long uid = -1, gid = -1;
  int i = 1;
  for (; i < argc; i++) {
    if (!strcmp(argv[i], "--")) {
      i++;
      break;
    }
    if (i + 1 >= argc) break;
    if (!strcmp(argv[i], "--netns")) netns = argv[++i];
    else if (!strcmp(argv[i], "--out")) out = argv[++i];
    else if (!strcmp(argv[i], "--uid")) uid = atol(argv[++i]);
    else if (!strcmp(argv[i], "--gid")) gid = atol(argv[++i]);
    else break;
  }
  if (i >= argc || out == NULL) {
    fprintf(stderr, "usage: rtime [--netns PATH] [--uid U --gid G] --out FILE -- COMMAND...\n");
    return 2;
  }
  if (netns) {
    int fd = open(netns, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
      fprintf(stderr, "rtime: setns %s: %s\n", netns, strerror(errno));
      return 127;
    }
    close(fd);
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t pid = fork();
  if (pid < 0) return 127;
  if (pid == 0) {
    if (gid >= 0 && (setgroups(0, NULL) != 0 || setgid((gid_t)gid) != 0)) _exit(127);
    if (uid >= 0 && setuid((uid_t)uid) != 0) _exit(127);
    execvp(argv[i], argv + i);
    fprintf(stderr, "rtime: cannot run %s: %s\n", argv[i], strerror(errno));
    _exit(127);
  }
  int status;
  struct rusage ru;
  while (wait4(pid, &status, 0, &ru) < 0) {
    if (errno != EINTR) return 127;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  FILE *f = fopen(out, "w");
  if (f) {
    fprintf(f, "{\"wall\":%.6f,\"user\":%.6f,\"sys\":%.6f,\"maxrss_kb\":%ld,\"rc\":%d}\n",
            (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
            ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6, ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6,
            ru.ru_maxrss, rc);
    fclose(f);
  }
  return rc;
}
