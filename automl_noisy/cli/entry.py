"""The entry point of the ``automl-noisy`` command: ``main`` parses the command line, runs the
sub-command's function from ``COMMANDS``, and turns what goes wrong into an exit code: a user
mistake (``UserError``) or a database that refused a write is one line on stderr and exit code 2,
Ctrl+C is exit code 130, any other error one line and exit code 1; ``--debug`` shows the traceback
instead."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from automl_noisy.cli.listing import cmd_components, cmd_presets
from automl_noisy.cli.model_commands import cmd_predict, cmd_train
from automl_noisy.cli.parser import PROG, build_parser
from automl_noisy.cli.search_commands import cmd_dashboard, cmd_effects, cmd_export, cmd_report, cmd_search
from automl_noisy.cli.storage_flags import _resolve_storage, _storage_write_refused

COMMANDS = {"search": cmd_search, "export": cmd_export, "train": cmd_train, "predict": cmd_predict,
            "components": cmd_components,
            "presets": cmd_presets, "effects": cmd_effects, "report": cmd_report, "dashboard": cmd_dashboard}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from automl_noisy.errors import UserError

    try:
        _resolve_storage(args)
        return int(COMMANDS[args.command](args) or 0)
    except UserError as e:
        if args.debug:
            raise
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug, not a user mistake: still one line unless --debug
        if args.debug:
            raise
        refused = _storage_write_refused(e)
        if refused:
            storage = getattr(args, "storage", None) or "the study storage"
            from automl_noisy.search.storage import mask_url

            print(f"{PROG}: error: cannot write {mask_url(storage)}: {refused}; make the database (and, for SQLite, "
                  "its file and folder) writable, or pass another --storage", file=sys.stderr)
            return 2
        from automl_noisy.errors import shorten

        print(f"{PROG}: internal error: {type(e).__name__}: {shorten(e)} (rerun with --debug for details)",
              file=sys.stderr)
        return 1
