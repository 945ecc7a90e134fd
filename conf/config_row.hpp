// conf/config_row.hpp — internal to conf/: one row of the schema table (conf/config_schema.cpp)
// and the function that checks a libconfig value against its row and stores it
// (conf/config_store.cpp). Not part of the public config interface (conf/config.hpp).
#pragma once
#include <string>
#include <vector>

#include "conf/config.hpp"

namespace libconfig {
class Setting;
}

namespace shoal::conf::internal {

// Extra checks for a value that passed the type and range checks. Return "" or the problem.
using IntCheck = std::string (*)(int64_t value);
using StringCheck = std::string (*)(const std::string& value);

// One setting. Exactly one field pointer is set, matching spec.type. For strings min/max bound
// the length (0, 0: unbounded, the check decides); for lists they bound the element count.
struct Row {
  SettingSpec spec;
  uint32_t Config::*int_field = nullptr;
  bool Config::*bool_field = nullptr;
  std::string Config::*string_field = nullptr;
  std::vector<ListenAddress> Config::*list_field = nullptr;
  std::vector<Cidr> Config::*cidr_field = nullptr;
  std::vector<std::string> Config::*strings_field = nullptr;
  StringCheck element_check = nullptr;  // strings_field: each element
  IntCheck int_check = nullptr;
  StringCheck string_check = nullptr;
};

// Checks `setting` against `row` (type, bounds, the row's check) and stores it into *config, or
// appends one error per problem (with the setting's line) to *errors and leaves *config
// unchanged for that setting.
void store_row(const Row& row, const libconfig::Setting& setting, Config* config, std::vector<ConfigError>* errors);

}  // namespace shoal::conf::internal
