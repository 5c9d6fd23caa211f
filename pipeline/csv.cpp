#include "pipeline/csv.h"

#include "core/error.h"

namespace cajal::pipeline {
namespace {

std::string trim(const std::string& text) {
  const auto begin = text.find_first_not_of(" \t");
  if (begin == std::string::npos) {
    return "";
  }
  return text.substr(begin, text.find_last_not_of(" \t") - begin + 1);
}

}  // namespace

std::string csv_location(const std::string& source, int line) {
  return "'" + source + "' line " + std::to_string(line);
}

std::string quoted_cell(const std::string& text) {
  constexpr std::size_t kMax = 40;
  return "'" + (text.size() > kMax ? text.substr(0, kMax) + "..." : text) + "'";
}

CsvTable parse_csv(const std::string& text, const std::string& source) {
  CsvTable table;
  std::size_t i = text.rfind("\xEF\xBB\xBF", 0) == 0 ? 3 : 0;
  int line = 1;
  std::vector<std::string> row;
  int row_line = 1;
  std::string cell;
  bool cell_quoted = false;
  auto end_cell = [&] {
    row.push_back(cell_quoted ? cell : trim(cell));
    cell.clear();
    cell_quoted = false;
  };
  auto end_row = [&] {
    end_cell();
    if (!(row.size() == 1 && row[0].empty())) {
      table.rows.push_back(std::move(row));
      table.lines.push_back(row_line);
    }
    row.clear();
  };
  while (i < text.size()) {
    const char c = text[i];
    if (c == '"' && trim(cell).empty() && !cell_quoted) {
      // A quoted cell: up to the closing quote, "" standing for one quote.
      const int opening_line = line;
      cell.clear();
      cell_quoted = true;
      ++i;
      while (true) {
        if (i >= text.size()) {
          throw Error(csv_location(source, opening_line), "a closing quote", "the end of the file");
        }
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            cell += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        line += text[i] == '\n' ? 1 : 0;
        cell += text[i++];
      }
      while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) {
        ++i;
      }
      if (i < text.size() && text[i] != ',' && text[i] != '\n' && text[i] != '\r') {
        throw Error(csv_location(source, line),
                    "a comma or the end of the line after a quoted cell",
                    quoted_cell(std::string(1, text[i])));
      }
      continue;
    }
    if (c == ',') {
      end_cell();
    } else if (c == '\n' || c == '\r') {
      end_row();
      i += (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ? 1 : 0;
      ++line;
      row_line = line;
    } else if (cell_quoted) {
      throw Error(csv_location(source, line), "a comma after a quoted cell",
                  quoted_cell(std::string(1, c)));
    } else {
      cell += c;
    }
    ++i;
  }
  end_row();
  return table;
}

}  // namespace cajal::pipeline
