"""SwimSearch desktop application (the window arrives with the GUI issue)."""

import sys


def main() -> int:
    print("SwimSearch: the desktop window is not built yet; use the engine's tests for now.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
