"""`python -m bot …`: the command line lives in `bot.ops.cli`."""

from bot.ops.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
