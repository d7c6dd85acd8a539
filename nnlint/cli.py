"""The `nnlint` command, following ruff's conventions.

Exit codes: 0 nothing to report, 1 findings or unreadable files, 2 usage,
configuration or internal error. No Python traceback reaches the user.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from contextlib import nullcontext
from pathlib import Path

import click

from nnlint import __version__, registry
from nnlint.cache import Cache, default_directory, max_size_from_environment
from nnlint.config import ConfigError, Selection, Settings, find_config, load_settings, validate_selectors
from nnlint.discover import FileFinder
from nnlint.fingerprint import fingerprint
from nnlint.report import FORMATS
from nnlint.report.statistics import STATISTICS_FORMATS
from nnlint.results_cache import ResultCache
from nnlint.runner import INTERNAL_ERROR, file_tasks, run

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class _DefaultCheckGroup(click.Group):
    """`nnlint PATHS` means `nnlint check PATHS`; `rules`, `rule`, `probe` and `server` are subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h", "--version")):
            args = ["check", *args]
        return super().parse_args(ctx, args)


def _split_codes(values: tuple[str, ...]) -> list[str]:
    return [code for value in values for code in value.split(",") if code.strip()]


def _settings(paths: list[Path], config: str | None, select, ignore, extend_select) -> Settings:
    cwd = Path.cwd()
    if config is not None:
        config_file = Path(config)
        if not config_file.is_file():
            raise ConfigError(f"--config {config}: no such file")
    else:
        start = paths[0].absolute() if paths else cwd
        config_file = find_config(start if start.is_dir() else start.parent)
    settings = load_settings(config_file, cwd)
    settings.command_line = Selection(
        select=validate_selectors(_split_codes(select), "--select") if select else None,
        extend_select=validate_selectors(_split_codes(extend_select), "--extend-select"),
        ignore=validate_selectors(_split_codes(ignore), "--ignore"),
    )
    return settings


def _report_options(command):
    """ruff's `--output-file`, `--statistics` and `--show-source`, for a command that ends in `_report`
    (checked before the command runs: a bad combination must not wait for a whole lint)."""

    @functools.wraps(command)
    def checked(**params):
        if params["statistics"] and params["output_format"] not in STATISTICS_FORMATS:
            _fail(f"--statistics prints --format text or json, not {params['output_format']}")
        return command(**params)

    options = [
        click.option("--output-file", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Write the report to this file (its directories are created) instead of stdout."),
        click.option("--statistics", is_flag=True, help="Count the findings of each rule instead of listing them."),
        click.option("--show-source", is_flag=True, help="Show the source lines of each finding (text format)."),
    ]  # fmt: skip
    return functools.reduce(lambda decorated, option: option(decorated), options, checked)


@click.group(cls=_DefaultCheckGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nnlint")
def main() -> None:
    """nnlint: find the bugs that make a neural network train silently worse."""


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--format", "output_format", type=click.Choice(sorted(FORMATS)), default="text", show_default=True)
@click.option("--select", multiple=True, help="Rule codes or prefixes to check (replaces the configured set).")
@click.option("--ignore", multiple=True, help="Rule codes or prefixes to skip.")
@click.option("--extend-select", multiple=True, help="Rule codes or prefixes to add to the selection.")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when findings are reported.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, help="Worker processes [default: CPU count].")
@click.option("--config", type=str, default=None, help="Path to a pyproject.toml to use instead of the nearest one.")
@click.option("--color/--no-color", default=None, help="Colour the text output [default: when on a terminal].")
@click.option("--confirm", "confirm", is_flag=True, help="Run the models on probes to confirm or refute findings (needs torch).")
@click.option("--show-refuted", is_flag=True, help="With --confirm, also list the findings the probes refuted.")
@click.option("--force-exclude", is_flag=True, help="Skip excluded and ignored files even when named (for pre-commit).")
@click.option(
    "--report", "report_dir", type=click.Path(path_type=Path), default=None, metavar="DIR",
    help="With --confirm, also write DIR/index.html: LR curves and gradient maps (needs nnlint[report]).",
)
@click.option("--fix", is_flag=True, help="Apply the safe fixes, then report what is left.")
@click.option("--diff", is_flag=True, help="Print the safe fixes as a unified diff; write nothing (exit 1 if any).")
@click.option(
    "--cache-dir", type=click.Path(path_type=Path), envvar="NNLINT_CACHE_DIR", default=None,
    help="Where results are kept between runs [default: the user cache directory, e.g. ~/.cache/nnlint].",
)  # fmt: skip
@click.option("--no-cache", is_flag=True, envvar="NNLINT_NO_CACHE", help="Lint every file; read and write no cache.")
@_report_options
def check(
    paths, output_format, select, ignore, extend_select, exit_zero, jobs, config, color, confirm, show_refuted,
    force_exclude, report_dir, fix, diff, cache_dir, no_cache, **reporting,
) -> None:  # fmt: skip
    """Lint PATHS (files or directories; default: the current directory)."""
    paths = list(paths) or [Path(".")]
    missing = [str(path) for path in paths if not os.path.lexists(path)]
    if missing:
        _fail(f"no such file or directory: {', '.join(missing)}")
    if report_dir is not None:
        _prepare_report(report_dir, confirm)
    try:
        cache = None if no_cache else Cache(cache_dir or default_directory(), max_size_from_environment())
    except ConfigError as error:
        _fail(str(error))
    built_by = fingerprint() if cache is not None else ""
    # Inside, the rules' metadata comes from the cache: a fully cached run never imports the rules.
    with registry.read_from(cache, built_by) if cache is not None else nullcontext():
        try:
            settings = _settings(paths, config, select, ignore, extend_select)
        except ConfigError as error:
            _fail(str(error))
        files = FileFinder(settings.root, settings.exclude_spec()).find(paths, force_exclude)
        jobs = jobs or os.cpu_count() or 1
        store = ResultCache(cache, built_by, settings, reuse=not confirm) if cache is not None else None
        result = run(files, settings, Path.cwd(), jobs, store)
        write_failed = False
        if fix or diff:  # the re-lint after writing fixes runs without the cache
            result, write_failed = _fix(result, files, settings, jobs, write=not diff)
        if confirm:
            progress = output_format == "text" and sys.stderr.isatty()
            result = _confirm(result, files, settings, show_refuted, progress)
    if report_dir is not None:
        _write_html_report(result, report_dir)
    _report(result, output_format, color, exit_zero, write_failed=write_failed, **reporting)


@main.command("probe")
@click.argument("target")
@click.option("--input", "input_spec", default=None, help='Probe input, e.g. "float[B,3,H,W]" or "long[B,T] < 1000".')
@click.option("--format", "output_format", type=click.Choice(sorted(FORMATS)), default="text", show_default=True)
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when findings are reported.")
@click.option("--config", type=str, default=None, help="Path to a pyproject.toml to use instead of the nearest one.")
@click.option("--color/--no-color", default=None, help="Colour the text output [default: when on a terminal].")
@_report_options
def probe_model(target, input_spec, output_format, exit_zero, config, color, **reporting) -> None:
    """Build one model, TARGET = pkg.module:ClassOrFactory, and probe it; no finding needed (needs torch)."""
    from nnlint.confirm.probe import ProbeError, probe
    from nnlint.confirm.run import SandboxError, torch_available

    if not torch_available():
        _fail("probe runs your model and needs torch: pip install 'nnlint[runtime]'")
    try:
        probed = probe(target, input_spec, _settings([], config, (), (), ()), Path.cwd())
    except (ConfigError, SandboxError, ProbeError) as error:
        _fail(str(error))
    if probed.model and output_format == "text":
        click.echo(f"nnlint: probed {probed.model['built_with']}; input {probed.model['input']}", err=True)
    _report(probed.result, output_format, color, exit_zero, **reporting)


@main.command("server")
def language_server() -> None:
    """Run the language server on stdin/stdout, for editors (needs pygls: pip install 'nnlint[lsp]')."""
    try:
        from nnlint.lsp.server import serve
    except ImportError as error:
        if error.name not in ("pygls", "lsprotocol") and not str(error.name).startswith(("pygls.", "lsprotocol.")):
            raise
        _fail("`nnlint server` needs pygls: pip install 'nnlint[lsp]'")
    serve()


def _fix(result, files, settings: Settings, jobs: int, write: bool):
    """`--fix` (write) or `--diff` (print, write nothing, exit): the fixed files' result after a re-lint,
    and whether some file could not be written."""
    from nnlint.fixer import FixError, fix_files
    from nnlint.project import project_at

    outcome = fix_files(file_tasks(files, settings, Path.cwd()), result.findings)
    if not write:
        click.echo("".join(change.diff() for change in outcome.changed), nl=False)
        for error in outcome.errors:
            click.echo(f"nnlint: error: {error}", err=True)
        files_changed = len(outcome.changed)
        click.echo(f"nnlint: would fix {_count(outcome.fixed, 'finding')} in {_count(files_changed, 'file')}", err=True)
        sys.exit(EXIT_ERROR if outcome.errors else EXIT_FINDINGS if outcome.changed else EXIT_CLEAN)
    written = []
    for change in outcome.changed:
        try:
            change.write()
            written.append(change)
        except FixError as error:
            outcome.errors.append(str(error))
    for error in outcome.errors:
        click.echo(f"nnlint: error: {error}", err=True)
    if written:
        project_at.cache_clear()  # its files, read before the writes, are stale now
        result = run(files, settings, Path.cwd(), jobs)
    fixed = sum(change.fixed for change in written)
    click.echo(
        f"nnlint: fixed {_count(fixed, 'finding')} in {_count(len(written), 'file')}; {len(result.findings)} remaining",
        err=True,
    )
    return result, bool(outcome.errors)


def _count(number: int, word: str) -> str:
    return f"{number} {word}{'' if number == 1 else 's'}"


def _report(
    result, output_format: str, color: bool | None, exit_zero: bool,
    output_file: Path | None = None, statistics: bool = False, show_source: bool = False, write_failed: bool = False,
) -> None:  # fmt: skip
    """Print `result` (or write it to `output_file`) and exit with check's codes: 2 internal error or a
    fix not written, 1 findings or diagnostics, else 0."""
    color = output_file is None and output_format == "text" and (sys.stdout.isatty() if color is None else color)
    if statistics:
        report = STATISTICS_FORMATS[output_format](result)
    elif output_format == "text":
        report = FORMATS["text"](result, color=color, show_source=show_source)
    else:
        report = FORMATS[output_format](result, color=color)
    _write(report, output_file)
    if write_failed or any(diagnostic.code == INTERNAL_ERROR for diagnostic in result.diagnostics):
        sys.exit(EXIT_ERROR)
    reported = result.findings or result.diagnostics
    sys.exit(EXIT_FINDINGS if reported and not exit_zero else EXIT_CLEAN)


def _write(report: str, output_file: Path | None) -> None:
    if output_file is None:
        if report:  # an empty report (no annotations, no statistics) prints nothing, not a blank line
            click.echo(report)
        return
    try:
        output_file.parent.mkdir(parents=True, exist_ok=True)
        output_file.write_text(report + "\n" if report else "", encoding="utf-8")
    except OSError as error:
        _fail(f"--output-file {output_file}: {error.strerror or error}")


@main.command("rules")
@click.option(
    "--format", "output_format", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True
)
def list_rules(output_format: str) -> None:
    """List every rule: code, name, severity, default, summary (markdown: the full documentation)."""
    from nnlint.docs import rules_markdown
    from nnlint.rule import all_rules

    rules = all_rules()
    if output_format == "markdown":
        click.echo(rules_markdown())
        return
    if output_format == "json":
        records = [
            {"code": r.code, "name": r.name, "severity": r.severity, "default": r.default_enabled, "summary": r.summary}
            for r in rules
        ]
        click.echo(json.dumps(records, indent=2))
        return
    for rule in rules:
        default = "" if rule.default_enabled else "  (off by default)"
        click.echo(f"{rule.code}  {rule.name:<36} {rule.severity:<8} {rule.summary}{default}")


@main.command("rule")
@click.argument("code")
def show_rule(code: str) -> None:
    """Print the documentation of one rule, e.g. `nnlint rule NN101`."""
    from nnlint.rule import rule_by_code

    rule = rule_by_code(code)
    if rule is None:
        _fail(f"unknown rule {code!r} (see `nnlint rules`)")
    click.echo(f"# {rule.code} {rule.name} ({rule.severity})\n\n{rule.summary}\n\n{rule.docs()}")


def _confirm(result, files, settings: Settings, show_refuted: bool, progress: bool):
    """The confirm pass, imported only when asked for: the static pass never needs torch."""
    from nnlint.confirm.run import SandboxError, confirm_run, torch_available

    if not torch_available():
        _fail("--confirm runs your models and needs torch: pip install 'nnlint[runtime]'")
    try:
        return confirm_run(result, files, settings, Path.cwd(), show_refuted, progress)
    except (ConfigError, SandboxError) as error:
        _fail(str(error))


def _prepare_report(directory: Path, confirm: bool) -> None:
    """--report draws what the confirm pass measured; checked before the run, not after its minutes."""
    from nnlint.report.html_report import ReportError, prepare_target

    if not confirm:
        _fail("--report draws what the confirm pass measures: add --confirm")
    try:
        prepare_target(directory)
    except ReportError as error:
        _fail(str(error))


def _write_html_report(result, directory: Path) -> None:
    from nnlint.report.html_report import write_report

    try:
        page = write_report(result, directory)
    except OSError as error:
        _fail(f"--report {directory}: cannot write the report: {error.strerror or error}")
    click.echo(f"nnlint: report written to {page}", err=True)


def _fail(message: str) -> None:
    click.echo(f"nnlint: error: {message}", err=True)
    sys.exit(EXIT_ERROR)
