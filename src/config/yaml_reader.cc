#include "config/yaml_reader.h"

#include <absl/strings/match.h>
#include <absl/strings/numbers.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_replace.h>
#include <absl/strings/string_view.h>

#include <charconv>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace cortex::config::internal {
namespace {

bool IsDigits(absl::string_view s, bool hex = false) {
  if (s.empty()) return false;
  for (char c : s) {
    bool ok = (c >= '0' && c <= '9') || (hex && ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')));
    if (!ok) return false;
  }
  return true;
}

absl::string_view StripSign(absl::string_view s) {
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) s.remove_prefix(1);
  return s;
}

bool IsPlainInt(absl::string_view s) {
  if (absl::StartsWith(s, "0x")) return IsDigits(s.substr(2), /*hex=*/true);
  if (absl::StartsWith(s, "0o")) {
    absl::string_view digits = s.substr(2);
    return IsDigits(digits) && digits.find_first_of("89") == absl::string_view::npos;
  }
  return IsDigits(StripSign(s));
}

// [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
bool IsPlainFloat(absl::string_view s) {
  absl::string_view body = StripSign(s);
  if (body == ".inf" || body == ".Inf" || body == ".INF") return true;
  if (s == ".nan" || s == ".NaN" || s == ".NAN") return true;
  size_t exp = body.find_first_of("eE");
  absl::string_view mantissa = body.substr(0, exp);
  if (exp != absl::string_view::npos && !IsDigits(StripSign(body.substr(exp + 1)))) return false;
  size_t dot = mantissa.find('.');
  if (dot == absl::string_view::npos) return IsDigits(mantissa);
  absl::string_view whole = mantissa.substr(0, dot);
  absl::string_view fraction = mantissa.substr(dot + 1);
  if (whole.empty()) return IsDigits(fraction);
  return IsDigits(whole) && (fraction.empty() || IsDigits(fraction));
}

absl::StatusOr<int64_t> ParseIntText(absl::string_view text) {
  int base = 10;
  absl::string_view digits = text;
  bool negative = false;
  if (absl::StartsWith(text, "0x") || absl::StartsWith(text, "0o")) {
    base = text[1] == 'x' ? 16 : 8;
    digits = text.substr(2);
  } else {
    negative = !text.empty() && text[0] == '-';
    digits = StripSign(text);
  }
  uint64_t magnitude = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), magnitude, base);
  constexpr uint64_t kMax = static_cast<uint64_t>(INT64_MAX);
  if (ec != std::errc() || end != digits.data() + digits.size() ||
      magnitude > kMax + (negative ? 1 : 0)) {
    return absl::InvalidArgumentError("is out of range");
  }
  return negative ? static_cast<int64_t>(0 - magnitude) : static_cast<int64_t>(magnitude);
}

constexpr int kMaxJsonValues = 100000;

absl::StatusOr<nlohmann::json> ToJsonWithin(const YAML::Node& node, int& budget) {
  // Aliases share nodes, so a small document can expand enormously ("billion laughs").
  if (--budget < 0) {
    return NodeError(node, absl::StrCat("is too large (more than ", kMaxJsonValues,
                                        " values, counting repeated aliases)"));
  }
  if (!node.IsDefined() || node.IsNull()) return nlohmann::json(nullptr);
  if (node.IsSequence()) {
    nlohmann::json array = nlohmann::json::array();
    for (const YAML::Node& item : node) {
      absl::StatusOr<nlohmann::json> value = ToJsonWithin(item, budget);
      if (!value.ok()) return value.status();
      array.push_back(*std::move(value));
    }
    return array;
  }
  if (node.IsMap()) {
    nlohmann::json object = nlohmann::json::object();
    for (const auto& entry : node) {
      if (!entry.first.IsScalar()) return NodeError(entry.first, "map keys must be scalars");
      absl::StatusOr<nlohmann::json> value = ToJsonWithin(entry.second, budget);
      if (!value.ok()) return InField(entry.first.Scalar(), value.status());
      object[entry.first.Scalar()] = *std::move(value);
    }
    return object;
  }
  switch (ResolveScalar(node)) {
    case ScalarType::kNull:
      return nlohmann::json(nullptr);
    case ScalarType::kBool:
      return nlohmann::json(node.Scalar()[0] == 't' || node.Scalar()[0] == 'T');
    case ScalarType::kInt: {
      absl::StatusOr<int64_t> value = ReadInt(node);
      if (value.ok()) return nlohmann::json(*value);
      return nlohmann::json(node.Scalar());  // too large for int64: keep the text
    }
    case ScalarType::kFloat: {
      absl::StatusOr<double> value = ReadNumber(node);
      if (value.ok()) return nlohmann::json(*value);
      return nlohmann::json(node.Scalar());  // .inf / .nan have no JSON form
    }
    case ScalarType::kString:
      break;
  }
  return nlohmann::json(node.Scalar());
}

}  // namespace

absl::Status InField(absl::string_view field, const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(field, ": ", status.message()));
}

absl::Status NodeError(const YAML::Node& node, absl::string_view message) {
  // Mark() throws on a node that a failed lookup produced; IsDefined() guards it.
  if (node.IsDefined()) {
    YAML::Mark mark = node.Mark();
    if (mark.line >= 0) {
      return absl::InvalidArgumentError(absl::StrCat(message, " (line ", mark.line + 1, ")"));
    }
  }
  return absl::InvalidArgumentError(message);
}

std::string Quote(absl::string_view text) {
  return absl::StrCat("\"", absl::StrReplaceAll(text, {{"\\", "\\\\"}, {"\"", "\\\""}}), "\"");
}

ScalarType ResolveScalar(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return ScalarType::kNull;
  const std::string& tag = node.Tag();
  const std::string& s = node.Scalar();
  if (tag == "!") return ScalarType::kString;  // quoted or block scalar
  if (tag != "?" && !tag.empty()) {
    constexpr absl::string_view kCore = "tag:yaml.org,2002:";
    if (tag == absl::StrCat(kCore, "int")) return ScalarType::kInt;
    if (tag == absl::StrCat(kCore, "float")) return ScalarType::kFloat;
    if (tag == absl::StrCat(kCore, "bool")) return ScalarType::kBool;
    if (tag == absl::StrCat(kCore, "null")) return ScalarType::kNull;
    return ScalarType::kString;
  }
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return ScalarType::kNull;
  if (s == "true" || s == "True" || s == "TRUE" || s == "false" || s == "False" || s == "FALSE") {
    return ScalarType::kBool;
  }
  if (IsPlainInt(s)) return ScalarType::kInt;
  if (IsPlainFloat(s)) return ScalarType::kFloat;
  return ScalarType::kString;
}

absl::StatusOr<std::string> ReadString(const YAML::Node& node) {
  if (!node.IsScalar() || ResolveScalar(node) != ScalarType::kString) {
    return NodeError(node, "must be a string");
  }
  return node.Scalar();
}

absl::StatusOr<int64_t> ReadInt(const YAML::Node& node) {
  if (!node.IsScalar() || ResolveScalar(node) != ScalarType::kInt) {
    return NodeError(node, "must be an integer");
  }
  absl::StatusOr<int64_t> value = ParseIntText(node.Scalar());
  if (!value.ok()) return NodeError(node, value.status().message());
  return value;
}

absl::StatusOr<double> ReadNumber(const YAML::Node& node) {
  ScalarType type = node.IsScalar() ? ResolveScalar(node) : ScalarType::kNull;
  if (type == ScalarType::kInt) {
    absl::StatusOr<int64_t> value = ReadInt(node);
    if (!value.ok()) return value.status();
    return static_cast<double>(*value);
  }
  double value = 0;
  if (type != ScalarType::kFloat || !absl::SimpleAtod(node.Scalar(), &value) ||
      node.Scalar().find_first_of("nN") != std::string::npos) {  // .inf / .nan
    return NodeError(node, "must be a number");
  }
  return value;
}

absl::StatusOr<std::string> ReadScalarText(const YAML::Node& node) {
  ScalarType type = node.IsScalar() ? ResolveScalar(node) : ScalarType::kNull;
  if (type != ScalarType::kString && type != ScalarType::kInt && type != ScalarType::kFloat) {
    return NodeError(node, "must be a string or a number");
  }
  return node.Scalar();
}

absl::StatusOr<int> ReadIntInRange(const YAML::Node& node, int64_t min, int64_t max) {
  absl::StatusOr<int64_t> value = ReadInt(node);
  if (!value.ok()) return value.status();
  if (*value < min) return NodeError(node, absl::StrCat("must be greater than or equal to ", min));
  if (*value > max) return NodeError(node, absl::StrCat("must be less than or equal to ", max));
  return static_cast<int>(*value);
}

absl::StatusOr<std::string> ReadEnum(const YAML::Node& node,
                                     std::initializer_list<absl::string_view> allowed) {
  absl::StatusOr<std::string> value = ReadString(node);
  if (!value.ok()) return value;
  for (absl::string_view candidate : allowed) {
    if (*value == candidate) return value;
  }
  std::string choices;
  size_t i = 0;
  for (absl::string_view candidate : allowed) {
    if (i > 0) choices += allowed.size() > 2 ? ", " : " ";
    if (i > 0 && i + 1 == allowed.size()) choices += "or ";
    choices += Quote(candidate);
    ++i;
  }
  return NodeError(node,
                   absl::StrCat("invalid value (got ", Quote(*value), ", must be ", choices, ")"));
}

absl::StatusOr<nlohmann::json> YamlToJson(const YAML::Node& node) {
  int budget = kMaxJsonValues;
  return ToJsonWithin(node, budget);
}

absl::StatusOr<YamlMap> YamlMap::Create(const YAML::Node& node) {
  if (!node.IsMap()) return NodeError(node, "must be a map");
  std::vector<Entry> entries;
  for (const auto& kv : node) {
    if (!kv.first.IsScalar() || ResolveScalar(kv.first) != ScalarType::kString) {
      std::string shown = kv.first.IsScalar() ? kv.first.Scalar() : "(a collection)";
      return NodeError(kv.first, absl::StrCat("non string key found: ", shown));
    }
    const std::string& key = kv.first.Scalar();
    for (const Entry& seen : entries) {
      if (seen.key == key) {
        return NodeError(kv.first, absl::StrCat("key ", Quote(key), " is defined more than once"));
      }
    }
    entries.push_back(Entry{key, kv.first, kv.second});
  }
  return YamlMap(node, std::move(entries));
}

absl::Status YamlMap::CheckKeys(absl::Span<const absl::string_view> allowed,
                                absl::Span<const absl::string_view> elsewhere,
                                absl::string_view kind_note) const {
  auto contains = [](absl::Span<const absl::string_view> keys, absl::string_view key) {
    for (absl::string_view k : keys) {
      if (k == key) return true;
    }
    return false;
  };
  for (const Entry& entry : entries_) {
    if (contains(allowed, entry.key)) continue;
    std::string message = absl::StrCat("key ", Quote(entry.key), " is not supported");
    if (contains(elsewhere, entry.key) && !kind_note.empty()) {
      absl::StrAppend(&message, " ", kind_note);
    }
    return NodeError(entry.key_node, message);
  }
  return absl::OkStatus();
}

std::optional<YAML::Node> YamlMap::Find(absl::string_view key) const {
  for (const Entry& entry : entries_) {
    if (entry.key == key) {
      if (entry.value.IsNull() ||
          (entry.value.IsScalar() && ResolveScalar(entry.value) == ScalarType::kNull)) {
        return std::nullopt;
      }
      return entry.value;
    }
  }
  return std::nullopt;
}

absl::Status YamlMap::MissingKey(absl::string_view key) const {
  return NodeError(node_, absl::StrCat("key ", Quote(key), " must be specified"));
}

absl::Status YamlMap::FieldError(absl::string_view key, absl::string_view message) const {
  return InField(key, ErrorAt(key, message));
}

absl::Status YamlMap::ErrorAt(absl::string_view key, absl::string_view message) const {
  for (const Entry& entry : entries_) {
    if (entry.key == key)
      return NodeError(entry.value.IsNull() ? entry.key_node : entry.value, message);
  }
  return NodeError(node_, message);
}

}  // namespace cortex::config::internal
