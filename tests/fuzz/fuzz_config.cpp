// libFuzzer target: the configuration loader (conf/config_load.cpp over libconfig): any text
// gives a Config or errors naming a line, never a crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "conf/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 65536) return 0;
  std::string text(reinterpret_cast<const char*>(data), size);
  // @include would read files: not what this target is about.
  if (text.find("@include") != std::string::npos) return 0;
  shoal::conf::LoadResult r = shoal::conf::load_config_text(text, "fuzz.conf");
  for (const auto& e : r.errors) (void)e.to_string();
  return 0;
}
