// tools/shoalctl.cpp — command-line client of shoald's stats socket (installed as shoalctl).
// Usage: shoalctl [-s SOCKET] [-t SECONDS] COMMAND...   e.g. shoalctl show workers json
//        shoalctl [-s SOCKET] wait-ready [SECONDS]       polls "show workers" until every
//                                                        worker is ready (exit 0) or times out (1)
// Sends the words as one line, prints the reply up to the empty line that ends it. Exit 0 on a
// reply, 1 if the reply starts with "error:" or the socket cannot be reached, 2 on bad usage.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

int connect_to(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (path.size() >= sizeof sun.sun_path) return -1;
  memcpy(sun.sun_path, path.c_str(), path.size() + 1);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

// Sends `line` and reads until "\n\n" or the deadline. Returns false on I/O error/timeout.
bool ask(const std::string& path, const std::string& line, int timeout_ms, std::string* reply) {
  int fd = connect_to(path);
  if (fd < 0) return false;
  std::string msg = line + "\n";
  if (write(fd, msg.data(), msg.size()) != ssize_t(msg.size())) return close(fd), false;
  reply->clear();
  char buf[4096];
  while (reply->size() < 2 || reply->compare(reply->size() - 2, 2, "\n\n") != 0) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return close(fd), false;
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    reply->append(buf, size_t(n));
  }
  close(fd);
  return true;
}

double now_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

// Every "workers:" line of "show workers" says ready=true.
int wait_ready(const std::string& path, double seconds) {
  double deadline = now_s() + seconds;
  while (now_s() < deadline) {
    std::string reply;
    if (ask(path, "show workers", 1000, &reply) && reply.find("workers:") != std::string::npos &&
        reply.find("ready=false") == std::string::npos) {
      printf("ready\n");
      return 0;
    }
    usleep(50000);
  }
  fprintf(stderr, "shoalctl: not ready after %.1f s (%s)\n", seconds, path.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path = "/run/shoald.sock";
  int timeout_s = 5;  // seconds of silence from shoald (a snapshot save answers when it is done: 600)
  int opt;
  while ((opt = getopt(argc, argv, "+s:t:h")) != -1) {
    if (opt == 's') path = optarg;
    else if (opt == 't') timeout_s = atoi(optarg);
    else {
      fprintf(opt == 'h' ? stdout : stderr, "usage: shoalctl [-s SOCKET] [-t SECONDS] COMMAND...  (try: shoalctl help)\n");
      return opt == 'h' ? 0 : 2;
    }
  }
  if (optind >= argc) {
    fprintf(stderr, "usage: shoalctl [-s SOCKET] [-t SECONDS] COMMAND...  (try: shoalctl help)\n");
    return 2;
  }
  if (!strcmp(argv[optind], "snapshot") && timeout_s == 5) timeout_s = 600;
  if (!strcmp(argv[optind], "wait-ready")) return wait_ready(path, optind + 1 < argc ? atof(argv[optind + 1]) : 10.0);
  std::string line;
  for (int i = optind; i < argc; i++) {
    std::string word = argv[i];
    // "transfer add FILE": the supervisor reads the file, so send an absolute path.
    if (i == optind + 2 && !strcmp(argv[optind], "transfer") && !strcmp(argv[optind + 1], "add")) {
      char* abs = realpath(argv[i], nullptr);
      if (!abs) {
        fprintf(stderr, "shoalctl: %s: %s\n", argv[i], strerror(errno));
        return 1;
      }
      word = abs;
      free(abs);
    }
    // "snapshot save FILE": the supervisor writes the file (it may not exist yet): an absolute path.
    if (i == optind + 2 && !strcmp(argv[optind], "snapshot") && !strcmp(argv[optind + 1], "save") && word[0] != '/') {
      char cwd[4096];
      if (!getcwd(cwd, sizeof cwd)) return fprintf(stderr, "shoalctl: getcwd: %s\n", strerror(errno)), 1;
      word = std::string(cwd) + "/" + word;
    }
    line += (i > optind ? " " : "") + word;
  }
  std::string reply;
  if (!ask(path, line, timeout_s * 1000, &reply)) {
    fprintf(stderr, "shoalctl: no reply from %s: %s\n", path.c_str(), errno ? strerror(errno) : "timeout");
    return 1;
  }
  if (reply.size() >= 2) reply.resize(reply.size() - 1);  // drop the terminating empty line
  fputs(reply.c_str(), stdout);
  return reply.compare(0, 6, "error:") == 0 ? 1 : 0;
}
