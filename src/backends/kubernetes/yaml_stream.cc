#include "backends/kubernetes/yaml_stream.h"

#include <absl/strings/ascii.h>
#include <absl/strings/str_split.h>
#include <yaml-cpp/yaml.h>

#include <array>
#include <string_view>

namespace cortex::backends::kubernetes {

namespace {

using nlohmann::json;

bool IsDigit(char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); }

// Strings a YAML 1.1 resolver reads as something else: null, booleans (y, yes, on, ... in
// every case Go's yaml accepts), and anything that starts like a number (ints, floats, octal,
// hex, sexagesimal "1:20", ".5", "-1", ".inf").
bool NeedsQuotes(std::string_view s) {
  if (s.empty()) return true;
  static constexpr std::array<std::string_view, 12> kWords = {
      "null", "~", "true", "false", "yes", "no", "on", "off", "y", "n", ".inf", ".nan"};
  std::string lower = absl::AsciiStrToLower(std::string(s));
  std::string_view bare = lower;
  if (bare.front() == '+' || bare.front() == '-') bare.remove_prefix(1);
  for (std::string_view word : kWords) {
    if (lower == word || bare == word) return true;
  }
  if (IsDigit(s.front())) return true;
  if (s.size() > 1 && (s[0] == '+' || s[0] == '-' || s[0] == '.') &&
      (IsDigit(s[1]) || (s[1] == '.' && s.size() > 2 && IsDigit(s[2])))) {
    return true;
  }
  return false;
}

void Emit(YAML::Emitter& out, const json& value) {
  switch (value.type()) {
    case json::value_t::object:
      if (value.empty()) {
        out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
        return;
      }
      out << YAML::BeginMap;
      for (const auto& [key, item] : value.items()) {
        out << YAML::Key;
        if (NeedsQuotes(key)) out << YAML::DoubleQuoted;
        out << key << YAML::Value;
        Emit(out, item);
      }
      out << YAML::EndMap;
      return;
    case json::value_t::array:
      if (value.empty()) {
        out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
        return;
      }
      out << YAML::BeginSeq;
      for (const auto& item : value) Emit(out, item);
      out << YAML::EndSeq;
      return;
    case json::value_t::string: {
      const auto& s = value.get_ref<const std::string&>();
      if (NeedsQuotes(s)) out << YAML::DoubleQuoted;
      out << s;
      return;
    }
    case json::value_t::boolean:
      out << value.get<bool>();
      return;
    case json::value_t::number_integer:
      out << value.get<int64_t>();
      return;
    case json::value_t::number_unsigned:
      out << value.get<uint64_t>();
      return;
    case json::value_t::number_float:
      out << value.get<double>();
      return;
    default:
      out << YAML::Null;
      return;
  }
}

}  // namespace

std::string ToYaml(const json& object) {
  YAML::Emitter out;
  out.SetIndent(2);
  out.SetSeqFormat(YAML::Block);
  out.SetMapFormat(YAML::Block);
  out.SetBoolFormat(YAML::TrueFalseBool);
  out.SetBoolFormat(YAML::LowerCase);
  Emit(out, object);
  std::string text = out.c_str();
  if (text.empty() || text.back() != '\n') text += '\n';
  return text;
}

std::string ToYamlStream(const std::vector<json>& objects,
                         const std::vector<std::string>& comments) {
  std::string out;
  for (size_t i = 0; i < objects.size(); ++i) {
    out += "---\n";
    if (i < comments.size() && !comments[i].empty()) {
      for (absl::string_view line : absl::StrSplit(comments[i], '\n')) {
        out += line.empty() ? "#\n" : "# " + std::string(line) + "\n";
      }
    }
    out += ToYaml(objects[i]);
  }
  return out;
}

}  // namespace cortex::backends::kubernetes
