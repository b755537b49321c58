// Path globs with '/' as the separator (spec §11): `*` and `?` stay within one path segment,
// `**` crosses segments, `[...]` is a character class. Thread-safe.
#pragma once

#include <string>

namespace cortex {

bool GlobMatch(const std::string& pattern, const std::string& path);

}  // namespace cortex
