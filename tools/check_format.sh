#!/usr/bin/env bash
# Fails when a C++ file tracked or added in the repository differs from .clang-format's layout.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(find core engine io models pipeline apps tests bench tools \
  \( -name '*.h' -o -name '*.cpp' \) -not -path '*/fixtures/*' 2>/dev/null | sort)
[ ${#files[@]} -gt 0 ] || { echo "check_format.sh: no C++ files found" >&2; exit 1; }
clang-format --dry-run --Werror "${files[@]}"
echo "check_format.sh: ${#files[@]} files formatted as .clang-format says"
