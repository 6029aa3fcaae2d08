# Sourced by the scripts that skip a step outside CI: in_ci is true when CI is set to
# anything but empty, "false" or "0" (as `.ci/run` sets it; tests/support/tools.rs reads
# it the same way).
in_ci() { [[ -n "${CI:-}" && "${CI}" != "false" && "${CI}" != "0" ]]; }
