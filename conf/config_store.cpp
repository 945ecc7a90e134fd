// conf/config_store.cpp — checks one libconfig value against its schema row (type, range,
// length, list elements, the row's own check) and stores it into Config; every problem becomes
// a ConfigError naming the setting and its line. Runs in the supervisor (and `shoald -t`)
// before any worker exists; touches no shm.
#include <cstring>
#include <libconfig.h++>

#include "conf/config_row.hpp"
#include "conf/topology_map.hpp"

namespace shoal::conf::internal {
namespace {

// "an integer", "a string", ... for type errors.
const char* type_name(libconfig::Setting::Type type) {
  switch (type) {
    case libconfig::Setting::TypeInt:
    case libconfig::Setting::TypeInt64:
      return "an integer";
    case libconfig::Setting::TypeFloat:
      return "a floating-point number";
    case libconfig::Setting::TypeString:
      return "a string";
    case libconfig::Setting::TypeBoolean:
      return "a boolean";
    case libconfig::Setting::TypeArray:
      return "an array";
    case libconfig::Setting::TypeList:
      return "a list";
    case libconfig::Setting::TypeGroup:
      return "a group";
    default:
      return "nothing";
  }
}

// Appends an error located at `at`. The file is left empty when the setting comes from the main
// text; the loader fills in the name it was given.
void add_error(const libconfig::Setting& at, const char* path, std::string message,
               std::vector<ConfigError>* errors) {
  const char* file = at.getSourceFile();
  errors->push_back(ConfigError{file ? file : "", static_cast<int>(at.getSourceLine()), path,
                                std::move(message)});
}

std::string type_problem(const char* wanted, const libconfig::Setting& setting) {
  return std::string("expected ") + wanted + ", got " + type_name(setting.getType());
}

std::string range_problem(int64_t min, int64_t max, int64_t got) {
  return "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " +
         std::to_string(got);
}

void store_int(const Row& row, const libconfig::Setting& s, Config* config,
               std::vector<ConfigError>* errors) {
  if (s.getType() != libconfig::Setting::TypeInt && s.getType() != libconfig::Setting::TypeInt64) {
    return add_error(s, row.spec.path, type_problem("an integer", s), errors);
  }
  int64_t value =
      s.getType() == libconfig::Setting::TypeInt ? static_cast<int>(s) : static_cast<long long>(s);
  if (value < row.spec.min || value > row.spec.max) {
    return add_error(s, row.spec.path, range_problem(row.spec.min, row.spec.max, value), errors);
  }
  std::string problem = row.int_check ? row.int_check(value) : "";
  if (!problem.empty()) return add_error(s, row.spec.path, problem, errors);
  config->*row.int_field = static_cast<uint32_t>(value);
}

void store_bool(const Row& row, const libconfig::Setting& s, Config* config,
                std::vector<ConfigError>* errors) {
  if (s.getType() != libconfig::Setting::TypeBoolean) {
    return add_error(s, row.spec.path, type_problem("a boolean (true or false)", s), errors);
  }
  config->*row.bool_field = static_cast<bool>(s);
}

void store_string(const Row& row, const libconfig::Setting& s, Config* config,
                  std::vector<ConfigError>* errors) {
  if (s.getType() != libconfig::Setting::TypeString) {
    return add_error(s, row.spec.path, type_problem("a string", s), errors);
  }
  std::string value = s.c_str();
  auto length = static_cast<int64_t>(value.size());
  bool bounded = row.spec.max > 0;
  if (bounded && (length < row.spec.min || length > row.spec.max)) {
    std::string problem = "must be " + std::to_string(row.spec.min) + " to " +
                          std::to_string(row.spec.max) + " characters long, got " +
                          std::to_string(length);
    return add_error(s, row.spec.path, problem, errors);
  }
  std::string problem = row.string_check ? row.string_check(value) : "";
  if (!problem.empty()) return add_error(s, row.spec.path, problem, errors);
  config->*row.string_field = value;
}

// Parses one udp.listen element; returns "" or the problem. Rejects an address listed twice.
std::string parse_list_element(const libconfig::Setting& element,
                               const std::vector<ListenAddress>& earlier, ListenAddress* out) {
  if (element.getType() != libconfig::Setting::TypeString) {
    return "element " + std::to_string(element.getIndex() + 1) + ": " +
           type_problem("a string", element);
  }
  std::string text = element.c_str(), why;
  if (!parse_listen_address(text, out, &why)) return "\"" + text + "\": " + why;
  for (const ListenAddress& other : earlier) {
    if (other.addr_len == out->addr_len && memcmp(&other.addr, &out->addr, out->addr_len) == 0) {
      return "\"" + text + "\": listed twice";
    }
  }
  return "";
}

// Checks that `s` is a list of at most row.spec.max elements; returns "" or the problem.
std::string list_problem(const Row& row, const libconfig::Setting& s, const char* what) {
  if (s.getType() != libconfig::Setting::TypeArray && s.getType() != libconfig::Setting::TypeList) {
    return type_problem("a list of strings, [ \"...\", ... ]", s);
  }
  if (s.getLength() > row.spec.max) {
    return "must list at most " + std::to_string(row.spec.max) + " " + what + ", got " +
           std::to_string(s.getLength());
  }
  return "";
}

// Stores the CIDR list only when every element is valid; each bad element is reported on its
// line.
void store_cidr_list(const Row& row, const libconfig::Setting& s, Config* config,
                     std::vector<ConfigError>* errors) {
  std::string problem = list_problem(row, s, "address blocks");
  if (!problem.empty()) return add_error(s, row.spec.path, problem, errors);
  std::vector<Cidr> blocks;
  size_t errors_before = errors->size();
  for (int i = 0; i < s.getLength(); ++i) {
    const libconfig::Setting& element = s[i];
    Cidr block;
    std::string why;
    if (element.getType() != libconfig::Setting::TypeString) {
      add_error(element, row.spec.path,
                "element " + std::to_string(i + 1) + ": " + type_problem("a string", element), errors);
    } else if (!parse_cidr(element.c_str(), &block, &why)) {
      add_error(element, row.spec.path, "\"" + std::string(element.c_str()) + "\": " + why, errors);
    } else {
      blocks.push_back(std::move(block));
    }
  }
  if (errors->size() == errors_before) config->*row.cidr_field = std::move(blocks);
}

// A list of strings, each checked by row.element_check; stored only when every element passes.
void store_strings(const Row& row, const libconfig::Setting& s, Config* config, std::vector<ConfigError>* errors) {
  std::string problem = list_problem(row, s, "entries");
  if (!problem.empty()) return add_error(s, row.spec.path, problem, errors);
  std::vector<std::string> values;
  size_t errors_before = errors->size();
  for (int i = 0; i < s.getLength(); ++i) {
    const libconfig::Setting& element = s[i];
    if (element.getType() != libconfig::Setting::TypeString) {
      add_error(element, row.spec.path, "element " + std::to_string(i + 1) + ": " + type_problem("a string", element), errors);
      continue;
    }
    std::string why = row.element_check ? row.element_check(element.c_str()) : "";
    if (!why.empty()) add_error(element, row.spec.path, why, errors);
    else values.push_back(element.c_str());
  }
  if (errors->size() == errors_before) config->*row.strings_field = std::move(values);
}

// Stores the list only when every element is valid; each bad element is reported on its line.
void store_list(const Row& row, const libconfig::Setting& s, Config* config,
                std::vector<ConfigError>* errors) {
  if (s.getType() != libconfig::Setting::TypeArray && s.getType() != libconfig::Setting::TypeList) {
    return add_error(s, row.spec.path, type_problem("a list of strings, [ \"...\", ... ]", s),
                     errors);
  }
  if (s.getLength() > row.spec.max) {
    std::string problem = "must list at most " + std::to_string(row.spec.max) + " addresses, got " +
                          std::to_string(s.getLength());
    return add_error(s, row.spec.path, problem, errors);
  }
  std::vector<ListenAddress> addresses;
  size_t errors_before = errors->size();
  for (int i = 0; i < s.getLength(); ++i) {
    ListenAddress address;
    std::string problem = parse_list_element(s[i], addresses, &address);
    if (problem.empty()) {
      addresses.push_back(std::move(address));
    } else {
      add_error(s[i], row.spec.path, problem, errors);
    }
  }
  if (errors->size() == errors_before) config->*row.list_field = std::move(addresses);
}

}  // namespace

void store_row(const Row& r, const libconfig::Setting& setting, Config* config, std::vector<ConfigError>* errors) {
  if (r.int_field) return store_int(r, setting, config, errors);
  if (r.bool_field) return store_bool(r, setting, config, errors);
  if (r.string_field) return store_string(r, setting, config, errors);
  if (r.cidr_field) return store_cidr_list(r, setting, config, errors);
  if (r.strings_field) return store_strings(r, setting, config, errors);
  store_list(r, setting, config, errors);
}

}  // namespace shoal::conf::internal
