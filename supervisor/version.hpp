// supervisor/version.hpp — shoal's release version (shown by -V, "show info", metrics).
#pragma once

namespace shoal {
inline constexpr const char* kShoalVersion = "0.1.0";
}
