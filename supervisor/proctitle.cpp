// supervisor/proctitle.cpp — see proctitle.hpp. Runs in every process at start and in each
// worker after fork. Copies environ strings to the heap once, then overwrites argv memory.
#include "supervisor/proctitle.hpp"

#include <sys/prctl.h>
#include <unistd.h>

#include <cstring>

extern char** environ;

namespace shoal {
namespace {
char* g_area = nullptr;
size_t g_area_len = 0;
}  // namespace

void proctitle_init(int argc, char** argv) {
  if (argc <= 0 || argv[0] == nullptr) return;
  char* start = argv[0];
  char* end = argv[0] + strlen(argv[0]) + 1;
  for (int i = 1; i < argc; i++)
    if (argv[i] == end) end = argv[i] + strlen(argv[i]) + 1;
  size_t n = 0;
  while (environ[n]) n++;
  char** env_copy = new char*[n + 1];
  for (size_t i = 0; i < n; i++) {
    if (environ[i] == end) end = environ[i] + strlen(environ[i]) + 1;
    env_copy[i] = strdup(environ[i]);
  }
  env_copy[n] = nullptr;
  environ = env_copy;
  // argv[] pointers still point into the area: copy them too so option parsing keeps working.
  for (int i = 0; i < argc; i++) argv[i] = strdup(argv[i]);
  g_area = start;
  g_area_len = size_t(end - start);
}

void proctitle_set(const char* title) {
  prctl(PR_SET_NAME, title, 0, 0, 0);
  if (!g_area || g_area_len < 2) return;
  size_t len = strlen(title);
  if (len > g_area_len - 1) len = g_area_len - 1;
  memset(g_area, 0, g_area_len);
  memcpy(g_area, title, len);
}

}  // namespace shoal
