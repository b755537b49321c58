#include "cli/table.h"

#include <algorithm>

namespace cortex::cli {

std::string RenderTable(const std::vector<Column>& columns,
                        const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> shown;
  for (size_t c = 0; c < columns.size(); ++c) {
    bool empty = std::all_of(rows.begin(), rows.end(), [&](const auto& row) {
      return c >= row.size() || row[c].empty() || row[c] == "-" || row[c] == "0";
    });
    if (!(columns[c].hide_when_empty && empty)) shown.push_back(c);
  }
  std::vector<size_t> width(columns.size(), 0);
  for (size_t c : shown) {
    width[c] = columns[c].header.size();
    for (const auto& row : rows) {
      if (c < row.size()) width[c] = std::max(width[c], row[c].size());
    }
  }
  auto line = [&](auto cell) {
    std::string out;
    for (size_t i = 0; i < shown.size(); ++i) {
      size_t c = shown[i];
      std::string text = cell(c);
      out += text;
      if (i + 1 < shown.size()) out += std::string(width[c] - text.size() + 3, ' ');
    }
    return out + "\n";
  };
  std::string out = line([&](size_t c) { return columns[c].header; });
  for (const auto& row : rows) out += line([&](size_t c) { return c < row.size() ? row[c] : ""; });
  return out;
}

std::string RenderKeyValues(const std::vector<std::pair<std::string, std::string>>& pairs,
                            const std::string& delimiter, size_t spaces) {
  size_t width = 0;
  for (const auto& [key, value] : pairs) width = std::max(width, key.size());
  std::string out;
  for (const auto& [key, value] : pairs) {
    out += key + delimiter + std::string(width - key.size() + spaces, ' ') + value + "\n";
  }
  return out;
}

}  // namespace cortex::cli
