// libFuzzer target: the cluster message decoder (worker/cluster_codec.hpp), which reads every
// message another node, or anything that can publish on the subject, sends over NATS. Any input
// is decoded or refused without reading past it; a decoded message encodes back to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "worker/cluster_codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shoal::worker;
  std::vector<uint8_t> copy(data, data + size);  // exact-size heap buffer: ASan sees overreads
  ClusterHeader h;
  std::vector<shoal::shm::Delta> deltas;
  std::string why;
  if (!decode_cluster_message(copy.data(), copy.size(), &h, &deltas, &why)) {
    if (why.empty() || !deltas.empty()) __builtin_trap();
    return 0;
  }
  std::vector<uint8_t> again;
  encode_cluster_message(h, deltas.data(), deltas.size(), &again);
  // IPv4 deltas carry 12 address bytes the decoder does not keep: compare the decoded form.
  ClusterHeader h2;
  std::vector<shoal::shm::Delta> d2;
  if (!decode_cluster_message(again.data(), again.size(), &h2, &d2, &why) || d2.size() != deltas.size() ||
      (!d2.empty() && std::memcmp(d2.data(), deltas.data(), d2.size() * sizeof d2[0]) != 0) || h2.name != h.name)
    __builtin_trap();
  return 0;
}
