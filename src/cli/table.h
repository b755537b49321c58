// Plain-text tables in the Cortex CLI's layout: columns padded with three spaces, and optional
// columns hidden when every value in them is empty. Thread-compatible.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace cortex::cli {

struct Column {
  std::string header;
  bool hide_when_empty = false;  // hidden when every cell is "" or "-" or "0"
};

std::string RenderTable(const std::vector<Column>& columns,
                        const std::vector<std::vector<std::string>>& rows);

// Cortex's key-value blocks: each key followed by `delimiter`, and every value starting at one
// column, `spaces` after the longest key and its delimiter ("name:     local").
std::string RenderKeyValues(const std::vector<std::pair<std::string, std::string>>& pairs,
                            const std::string& delimiter = ":", size_t spaces = 1);

}  // namespace cortex::cli
