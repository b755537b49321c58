// Typed, strict reading of yaml-cpp nodes for the config parser (private to the config module).
//
// Every error is an InvalidArgument whose message ends with the YAML line when it is known; the
// caller prefixes the field path while unwinding (InField), so the innermost reader only says
// what is wrong ("must be an integer (line 7)").
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <absl/strings/string_view.h>
#include <absl/types/span.h>
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

// Early returns for absl::Status / absl::StatusOr, private to this module.
#define CONFIG_RETURN_IF_ERROR(expr)                    \
  do {                                                  \
    if (absl::Status _status = (expr); !_status.ok()) { \
      return _status;                                   \
    }                                                   \
  } while (0)
#define CONFIG_CONCAT_INNER(a, b) a##b
#define CONFIG_CONCAT(a, b) CONFIG_CONCAT_INNER(a, b)
#define CONFIG_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(*tmp)
// `CONFIG_ASSIGN_OR_RETURN(auto x, MaybeX());` declares x or returns the error.
#define CONFIG_ASSIGN_OR_RETURN(lhs, expr) \
  CONFIG_ASSIGN_OR_RETURN_IMPL(CONFIG_CONCAT(_status_or_, __LINE__), lhs, expr)

namespace cortex::config::internal {

// "field: <message>"; OK stays OK.
absl::Status InField(absl::string_view field, const absl::Status& status);

// An InvalidArgument error about `node`, with " (line N)" appended when the node has a position.
absl::Status NodeError(const YAML::Node& node, absl::string_view message);

// `"text"`, for quoting user values in messages.
std::string Quote(absl::string_view text);

// The YAML 1.2 core-schema type of a scalar (plain scalars are resolved; quoted ones are strings).
enum class ScalarType { kNull, kBool, kInt, kFloat, kString };
ScalarType ResolveScalar(const YAML::Node& node);

absl::StatusOr<std::string> ReadString(const YAML::Node& node);  // "must be a string"
absl::StatusOr<int64_t> ReadInt(const YAML::Node& node);         // "must be an integer"
absl::StatusOr<double> ReadNumber(const YAML::Node& node);       // "must be a number"
// The text of a string or number scalar: quantities may be written "1", 1 or 0.5.
absl::StatusOr<std::string> ReadScalarText(const YAML::Node& node);
// An integer within [min, max], with Cortex's bound messages.
absl::StatusOr<int> ReadIntInRange(const YAML::Node& node, int64_t min, int64_t max);

// A string that is one of `allowed`: `invalid value (got "x", must be "a", "b", or "c")`.
absl::StatusOr<std::string> ReadEnum(const YAML::Node& node,
                                     std::initializer_list<absl::string_view> allowed);

// Converts any node to JSON (scalars resolved as in ResolveScalar); map keys become strings.
absl::StatusOr<nlohmann::json> YamlToJson(const YAML::Node& node);

// A YAML mapping with string keys, checked for duplicate keys.
class YamlMap {
 public:
  // Fails with "must be a map" when `node` is not a mapping.
  static absl::StatusOr<YamlMap> Create(const YAML::Node& node);

  // Fails on the first key that is not in `allowed`: `key "x" is not supported`. Keys in
  // `elsewhere` are valid for some other kind, and the message says so with `kind_note`.
  absl::Status CheckKeys(absl::Span<const absl::string_view> allowed,
                         absl::Span<const absl::string_view> elsewhere = {},
                         absl::string_view kind_note = "") const;

  // The value of `key`, or nullopt when the key is absent or its value is null.
  std::optional<YAML::Node> Find(absl::string_view key) const;
  bool Has(absl::string_view key) const { return Find(key).has_value(); }

  // `key "x" must be specified`, located at this map.
  absl::Status MissingKey(absl::string_view key) const;

  // "<key>: <message>", located at the key's value (or at this map when the key is absent).
  absl::Status FieldError(absl::string_view key, absl::string_view message) const;
  // "<message>" located at the key's value: for messages that name the key themselves.
  absl::Status ErrorAt(absl::string_view key, absl::string_view message) const;

  // Reads an optional field with `read` (a callable: const YAML::Node& -> absl::StatusOr<T>);
  // nullopt when absent or null. Errors are prefixed with the key.
  template <typename T, typename ReadFn>
  absl::StatusOr<std::optional<T>> Read(absl::string_view key, ReadFn read) const {
    std::optional<YAML::Node> value = Find(key);
    if (!value) return std::optional<T>();
    absl::StatusOr<T> result = read(*value);
    if (!result.ok()) return InField(key, result.status());
    return std::optional<T>(*std::move(result));
  }

  // Like Read, but a missing key is an error.
  template <typename T, typename ReadFn>
  absl::StatusOr<T> ReadRequired(absl::string_view key, ReadFn read) const {
    absl::StatusOr<std::optional<T>> result = Read<T>(key, read);
    if (!result.ok()) return result.status();
    if (!result->has_value()) return MissingKey(key);
    return **std::move(result);
  }

  const YAML::Node& node() const { return node_; }

 private:
  struct Entry {
    std::string key;
    YAML::Node key_node;
    YAML::Node value;
  };
  YamlMap(YAML::Node node, std::vector<Entry> entries)
      : node_(std::move(node)), entries_(std::move(entries)) {}

  YAML::Node node_;
  std::vector<Entry> entries_;
};

}  // namespace cortex::config::internal
