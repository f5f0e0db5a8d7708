"""`backdrop`: run | demo | models. Errors print `error CODE: message`, never a traceback."""

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Callable, Sequence

from api_contracts.errors import BackdropError, ErrorCode

EXIT_USER_ERROR = 2
EXIT_INTERNAL = 3


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _quiet_libraries(args.verbose, getattr(args, "uses_tensorflow", False))
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except BackdropError as exc:
        print(f"backdrop: error {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("backdrop: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the last line of defence: one line, with a code
        logging.getLogger("backdrop").debug("internal error", exc_info=True)
        print(f"backdrop: error {ErrorCode.INTERNAL}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="backdrop", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    commands = parser.add_subparsers(dest="command", required=True)
    from worker.cli.local_commands import add_demo, add_models, add_run
    from worker.cli.operator_commands import add_operator_commands
    from worker.cli.serve_command import add_serve_command
    from worker.cli.service_commands import add_service_commands

    add_run(commands)
    add_demo(commands)
    add_models(commands)
    add_service_commands(commands)
    add_operator_commands(commands)
    add_serve_command(commands)
    return parser


def _quiet_libraries(verbose: bool, uses_tensorflow: bool) -> None:
    # TensorFlow prints pages of CUDA and oneDNN notices on a CPU machine.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", message=r".*tf.lite.Interpreter is deprecated.*")
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Never for `backdrop worker`: the Celery parent must not import TensorFlow.
    if uses_tensorflow and not verbose:
        _import_tensorflow_silently()


def _import_tensorflow_silently() -> None:
    """TensorFlow logs CUDA probes through absl before any log level applies;
    on a CPU machine that is a screenful of noise. Import it with stderr shut."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")  # the CUDA probe logs here
    except ImportError:
        pass  # reported properly where TensorFlow is first needed
    finally:
        os.dup2(saved, 2)
        os.close(saved)


if __name__ == "__main__":
    sys.exit(main())
