// shm/layout_version.cpp — the value of shm::kLayoutVersion (shm/layout.hpp). Bump it whenever any
// shm struct changes size, offset or meaning. It lives in its own object so that a bump
// recompiles one file, and so that the layout-test build (Makefile `layout-test`:
// -DSHOAL_SHM_LAYOUT_TEST_BUMP=1) recompiles only this file and links it before libshoal.a: a
// shoald whose segments carry another layout version, which refuses the normal build's shared
// memory and starts fresh, as after an upgrade that changed the layout.
#include "shm/layout.hpp"

#ifndef SHOAL_SHM_LAYOUT_TEST_BUMP
#define SHOAL_SHM_LAYOUT_TEST_BUMP 0
#endif

namespace shoal::shm {

// 6: connection-id keys in the control segment; 7: the sync worker's slot (issue 14);
// 8: the cluster segment's deploy-transfer rings; 9: 8-byte peer index slots, 12-byte IPv4 peers,
// a packed state word (flags, progress, last_seen modulo 2^18 s) (issue 13); 10: 6-byte peer
// index slots (torrent + 1, list, 22-bit position), list blocks of 3/4 sizes too (issue 13);
// 11: 48-byte torrent records (6-byte list words: count, buddy-node block; live and kind as
// marker words) (issue 13)
const uint32_t kLayoutVersion = 11 + SHOAL_SHM_LAYOUT_TEST_BUMP;

}  // namespace shoal::shm
