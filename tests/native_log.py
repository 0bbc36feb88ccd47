"""stderr as the package wrote it: TensorFlow's own C++ start-up lines set aside.

TensorFlow 2.21 (the modern stack) writes INFO lines through absl at library load and
first op ("oneDNN custom operations are on", "Could not find cuda drivers", "failed call
to cuInit"), before absl::InitializeLog and whatever TF_CPP_MIN_LOG_LEVEL says
(measured: levels 0-3 print the same lines). The package's own message is still one
line; on the faithful stack (TF 2.15 honours TF_CPP_MIN_LOG_LEVEL=3) nothing is set
aside, so the tests stay as strict as they were.
"""

import re

from tf_gancond import stack

_NATIVE = re.compile(
    r'(WARNING: All log messages before absl::InitializeLog\(\) is called'
    r'|[IWE]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] '
    r'|To enable the following instructions: )')


def package_lines(stderr):
  """The lines of `stderr` that are not TensorFlow's C++ start-up log (modern stack)."""
  lines = stderr.splitlines()
  if stack.NAME == 'faithful':
    return lines
  return [line for line in lines if not _NATIVE.match(line)]
