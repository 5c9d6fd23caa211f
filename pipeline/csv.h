// CSV files as cajal reads them (evaluate-classifier's inputs, classify's truth, training case
// lists): RFC 4180 quoting, a UTF-8 byte-order mark and CRLF accepted, empty lines skipped.
#pragma once

#include <string>
#include <vector>

namespace cajal::pipeline {

// The cells of a CSV file, one row per non-empty line (RFC 4180 quoting, a UTF-8 BOM and CRLF
// accepted). `lines` holds the 1-based line where each row starts, for messages.
struct CsvTable {
  std::vector<std::vector<std::string>> rows;
  std::vector<int> lines;
};

// Throws Error naming `source` and the line on an unterminated quote or text after a closing
// quote.
CsvTable parse_csv(const std::string& text, const std::string& source);

// "'SOURCE' line N": where a message about a CSV file points.
std::string csv_location(const std::string& source, int line);
// A cell for a message: in single quotes, cut after 40 characters.
std::string quoted_cell(const std::string& text);

}  // namespace cajal::pipeline
