"""Net Designer. No arguments (or a project file) opens the window; sub-commands run headless.

    python main.py                       the designer, in its start state
    python main.py PROJECT.json          the designer with that project open
    python main.py templates | new | analyze | export ...   see engine/cli.py
"""

import sys

SUBCOMMANDS = {"templates", "new", "analyze", "export", "train", "explain"}


def main(argv: list[str]) -> int:
    if not argv or (argv[0].lower().endswith(".json") and argv[0] not in SUBCOMMANDS):
        from designer.app import run

        return run(argv)
    from engine.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
