"""External tools: pins, installer, locating binaries, version checks, and one module per tool."""
