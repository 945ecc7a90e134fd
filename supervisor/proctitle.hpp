// supervisor/proctitle.hpp — process titles shown by ps(1), e.g. "shoald: swarm worker 1".
// proctitle_init() moves the environment out of the way (as nginx does) so the whole
// argv+environ area can hold the title; call it first thing in main().
#pragma once

namespace shoal {

void proctitle_init(int argc, char** argv);
// Sets the ps title and the kernel comm name (first 15 bytes, prctl PR_SET_NAME).
void proctitle_set(const char* title);

}  // namespace shoal
