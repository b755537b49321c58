// Kubernetes quantities ("200m", "1Gi") and Go durations ("1m30s").

#include "config/quantity.h"

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <absl/strings/ascii.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/string_view.h>

#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "config/api_config.h"

namespace cortex::config {
namespace {

using int128 = __int128;

// value = sign * mantissa * 10^exp10 * 2^exp2, exact.
struct Quantity {
  bool negative = false;
  int64_t mantissa = 0;
  int exp10 = 0;
  int exp2 = 0;
};

// More significant digits than this could overflow the exact arithmetic below; no real CPU or
// memory quantity needs them.
constexpr int kMaxSignificantDigits = 18;

struct Suffix {
  absl::string_view name;
  int exp10;
  int exp2;
};
constexpr std::array<Suffix, 17> kSuffixes = {{
    {"", 0, 0},
    {"n", -9, 0},
    {"u", -6, 0},
    {"m", -3, 0},
    {"k", 3, 0},
    {"K", 3, 0},
    {"M", 6, 0},
    {"G", 9, 0},
    {"T", 12, 0},
    {"P", 15, 0},
    {"E", 18, 0},
    {"Ki", 0, 10},
    {"Mi", 0, 20},
    {"Gi", 0, 30},
    {"Ti", 0, 40},
    {"Pi", 0, 50},
    {"Ei", 0, 60},
}};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

absl::Status InvalidQuantity(absl::string_view text) {
  return absl::InvalidArgumentError(
      absl::StrCat("\"", text, "\" is not a valid quantity (e.g. 200m, 0.5, 1Gi, 512Mi)"));
}

absl::StatusOr<Quantity> ParseQuantity(absl::string_view text) {
  absl::string_view s = absl::StripAsciiWhitespace(text);
  Quantity q;
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    q.negative = s[i] == '-';
    ++i;
  }
  int significant = 0;
  bool any_digit = false;
  bool in_fraction = false;
  for (; i < s.size() && (IsDigit(s[i]) || (s[i] == '.' && !in_fraction)); ++i) {
    if (s[i] == '.') {
      in_fraction = true;
      continue;
    }
    any_digit = true;
    int digit = s[i] - '0';
    if (q.mantissa == 0 && digit == 0) {
      if (in_fraction) --q.exp10;
      continue;
    }
    if (++significant > kMaxSignificantDigits) {
      return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" has too many digits"));
    }
    q.mantissa = q.mantissa * 10 + digit;
    if (in_fraction) --q.exp10;
  }
  if (!any_digit) return InvalidQuantity(text);

  absl::string_view suffix = s.substr(i);
  // "1e3" and "1E-2" are exponents; "1E" and "1Ei" are suffixes.
  if (suffix.size() >= 2 && (suffix[0] == 'e' || suffix[0] == 'E')) {
    absl::string_view exponent = suffix.substr(1);
    bool negative_exp = false;
    if (exponent[0] == '+' || exponent[0] == '-') {
      negative_exp = exponent[0] == '-';
      exponent.remove_prefix(1);
    }
    if (!exponent.empty() && IsDigit(exponent[0])) {
      int exp = 0;
      for (char c : exponent) {
        if (!IsDigit(c)) return InvalidQuantity(text);
        exp = exp * 10 + (c - '0');
        if (exp > 100) return InvalidQuantity(text);
      }
      q.exp10 += negative_exp ? -exp : exp;
      return q;
    }
  }
  for (const Suffix& known : kSuffixes) {
    if (suffix == known.name) {
      q.exp10 += known.exp10;
      q.exp2 = known.exp2;
      return q;
    }
  }
  return InvalidQuantity(text);
}

// The quantity times 10^scale10 as an integer, rounded up (as Kubernetes does).
absl::StatusOr<int64_t> ToInt64(const Quantity& q, int scale10, absl::string_view text) {
  // |mantissa| < 10^18 < 2^60, and every step below keeps |v| < 2^126 before checking.
  constexpr int128 kLimit = std::numeric_limits<int64_t>::max();
  const absl::Status too_large =
      absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is too large"));
  int128 v = q.mantissa;
  v <<= q.exp2;  // exp2 <= 60
  int exp10 = q.exp10 + scale10;
  for (; exp10 > 0 && v != 0; --exp10) {
    v *= 10;
    if (v > kLimit) return too_large;
  }
  if (exp10 < 0 && v != 0) {
    // Dividing by 10 one step at a time keeps the floor exact; any remainder rounds up.
    bool remainder = false;
    for (; exp10 < 0 && v != 0; ++exp10) {
      remainder |= v % 10 != 0;
      v /= 10;
    }
    if (remainder) ++v;
  }
  if (v > kLimit) return too_large;
  int64_t result = static_cast<int64_t>(v);
  return q.negative ? -result : result;
}

struct DurationUnit {
  absl::string_view name;
  int64_t nanos;
};
constexpr std::array<DurationUnit, 8> kDurationUnits = {{
    {"ns", 1},
    {"us", 1000},
    {"\xC2\xB5s", 1000},  // U+00B5 micro sign
    {"\xCE\xBCs", 1000},  // U+03BC Greek mu
    {"ms", 1000000},
    {"s", 1000000000},
    {"m", 60LL * 1000000000},
    {"h", 3600LL * 1000000000},
}};

}  // namespace

absl::StatusOr<int64_t> ParseCpuMilli(std::string_view std_text) {
  absl::string_view text(std_text.data(), std_text.size());
  absl::StatusOr<Quantity> q = ParseQuantity(text);
  if (!q.ok()) return q.status();
  return ToInt64(*q, 3, text);
}

absl::StatusOr<int64_t> ParseMemBytes(std::string_view std_text) {
  absl::string_view text(std_text.data(), std_text.size());
  absl::StatusOr<Quantity> q = ParseQuantity(text);
  if (!q.ok()) return q.status();
  return ToInt64(*q, 0, text);
}

absl::StatusOr<int64_t> ParseDurationSeconds(std::string_view std_text) {
  absl::string_view text(std_text.data(), std_text.size());
  absl::StatusOr<int64_t> nanos = internal::ParseDurationNanos(text);
  if (!nanos.ok()) return nanos.status();
  if (*nanos % 1000000000 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("duration \"", text, "\" must be a whole number of seconds"));
  }
  return *nanos / 1000000000;
}

std::string FormatDuration(int64_t seconds) {
  if (seconds == 0) return "0s";
  std::string sign = seconds < 0 ? "-" : "";
  uint64_t s = seconds < 0 ? -static_cast<uint64_t>(seconds) : static_cast<uint64_t>(seconds);
  if (s < 60) return absl::StrCat(sign, s, "s");
  if (s < 3600) return absl::StrCat(sign, s / 60, "m", s % 60, "s");
  return absl::StrCat(sign, s / 3600, "h", s % 3600 / 60, "m", s % 60, "s");
}

namespace internal {

// Go's time.ParseDuration: a sequence of decimal numbers, each with an optional fraction and a
// unit ("1h30m", "1.5s", "300ms"); "0" alone needs no unit.
absl::StatusOr<int64_t> ParseDurationNanos(absl::string_view text) {
  const absl::Status invalid =
      absl::InvalidArgumentError(absl::StrCat("invalid duration \"", text, "\""));
  const absl::Status too_large =
      absl::InvalidArgumentError(absl::StrCat("duration \"", text, "\" is too large"));
  absl::string_view s = text;
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return 0;
  if (s.empty()) return invalid;
  constexpr int128 kLimit = std::numeric_limits<int64_t>::max();
  int128 total = 0;
  while (!s.empty()) {
    int128 whole = 0;
    int128 fraction = 0;
    int128 fraction_scale = 1;
    size_t i = 0;
    bool any_digit = false;
    for (; i < s.size() && IsDigit(s[i]); ++i) {
      whole = whole * 10 + (s[i] - '0');
      if (whole > kLimit) return too_large;
      any_digit = true;
    }
    if (i < s.size() && s[i] == '.') {
      for (++i; i < s.size() && IsDigit(s[i]); ++i) {
        any_digit = true;
        // Digits past nanosecond precision of an hour cannot change the result.
        if (fraction_scale > 1000000000000000LL) continue;
        fraction = fraction * 10 + (s[i] - '0');
        fraction_scale *= 10;
      }
    }
    if (!any_digit) return invalid;
    size_t unit_end = i;
    while (unit_end < s.size() && s[unit_end] != '.' && !IsDigit(s[unit_end])) ++unit_end;
    absl::string_view unit = s.substr(i, unit_end - i);
    if (unit.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("missing unit in duration \"", text, "\" (e.g. 30s, 5m, 1h)"));
    }
    int64_t unit_nanos = 0;
    for (const DurationUnit& known : kDurationUnits) {
      if (unit == known.name) unit_nanos = known.nanos;
    }
    if (unit_nanos == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown unit \"", unit, "\" in duration \"", text, "\""));
    }
    total += whole * unit_nanos + fraction * unit_nanos / fraction_scale;
    if (total > kLimit) return too_large;
    s.remove_prefix(unit_end);
  }
  int64_t result = static_cast<int64_t>(total);
  return negative ? -result : result;
}

}  // namespace internal

std::string FormatCpuMilli(int64_t milli) {
  if (milli % 1000 == 0) return absl::StrCat(milli / 1000);
  return absl::StrCat(milli, "m");
}

std::string FormatMemBytes(int64_t bytes) {
  if (bytes == 0) return "0";
  static constexpr std::array<std::pair<absl::string_view, int64_t>, 10> kUnits = {{
      {"Ei", int64_t{1} << 60},
      {"Pi", int64_t{1} << 50},
      {"Ti", int64_t{1} << 40},
      {"Gi", int64_t{1} << 30},
      {"Mi", int64_t{1} << 20},
      {"Ki", int64_t{1} << 10},
      {"T", 1000000000000LL},
      {"G", 1000000000LL},
      {"M", 1000000LL},
      {"k", 1000LL},
  }};
  for (const auto& [name, size] : kUnits) {
    if (bytes % size == 0) return absl::StrCat(bytes / size, name);
  }
  return absl::StrCat(bytes);
}

}  // namespace cortex::config
