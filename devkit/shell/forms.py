"""Questions the shell asks on the terminal: the prompt and line editing (readline history when interactive),
yes/no confirmations, choosing an option, and filling a modal form field by field before submitting it as
Slack would. Running out of input in the middle of a question raises `EndOfInput`, never a half answer.
"""

from __future__ import annotations

import contextlib
import re
import sys
from pathlib import Path
from typing import Any

from devkit.shell.render import (
    Button,
    Field,
    Form,
    framed,
    parse_modal,
)

HISTORY_FILE = Path("~/.snapshot_bot_history")


def _suggested(answer: Any) -> tuple[list[tuple[str, str]], list[str]]:
    """(label, value) of the options an options answer offers (groups flattened), and the groups' labels."""
    if not isinstance(answer, dict):
        return [], []
    groups = answer.get("option_groups")
    if isinstance(groups, list):
        headings = [str((g.get("label") or {}).get("text", "")) for g in groups if isinstance(g, dict)]
        raw = [o for g in groups if isinstance(g, dict) for o in g.get("options") or []]
    else:
        headings, raw = [], answer.get("options") or []
    options = [
        (str((o.get("text") or {}).get("text", "")), str(o.get("value", ""))) for o in raw if isinstance(o, dict)
    ]
    return options, [h for h in headings if h]


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class EndOfInput(Exception):
    """stdin ran out in the middle of a question (a confirm or a form)."""


class FormsAndInput:
    """Reading answers from the user for `Shell`."""

    def _choose_option(self, button: Button) -> str | None:
        for index, (label, _) in enumerate(button.options, 1):
            self._write(f"  {index}. {label}")
        answer = (self._ask(f"{button.label} — which one? ") or "").strip()
        for index, (label, value) in enumerate(button.options, 1):
            if answer in (str(index), value, label):
                return value
        self._write(self.style.dim("Nothing chosen."))
        return None

    def _fill_pending_forms(self) -> None:
        while self._pending_forms:
            self._fill_form(self._pending_forms.pop(0))

    def _fill_form(self, view: dict[str, Any]) -> None:
        assert self.driver is not None
        form = parse_modal(view, self.style, self.names)
        self._show_form_heading(form)
        answers: dict[str, str] = {}
        to_ask = form.fields
        while True:
            for field in to_ask:
                answer = self._ask_external(field, form) if field.kind == "external_select" else self._ask_field(field)
                if answer is None:
                    self._write(self.style.dim("Form closed; nothing was sent."))
                    return
                answers[field.block_id] = answer
            response = self.driver.view_submission(
                form.callback_id,
                form.values(answers),
                user_id=self.user_id,
                user_name=self.user_name,
                private_metadata=form.private_metadata,
                blocks=form.blocks,
            )
            body: dict[str, Any] = {}
            if response.status == 200 and response.body:
                with contextlib.suppress(ValueError):
                    decoded = response.json()
                    body = decoded if isinstance(decoded, dict) else {}
            action = body.get("response_action")
            if action == "errors" and isinstance(body.get("errors"), dict):
                errors = {str(k): str(v) for k, v in body["errors"].items()}
                for field in form.fields:
                    if field.block_id in errors:
                        self._write(self.style.red(f"{field.label}: {errors[field.block_id]}"))
                to_ask = [f for f in form.fields if f.block_id in errors] or form.fields
                continue
            if action in ("update", "push") and isinstance(body.get("view"), dict):
                form = parse_modal(body["view"], self.style, self.names)
                self._show_form_heading(form)
                answers, to_ask = {}, form.fields
                continue
            self._write(self.style.dim(f"({form.submit}: sent)"))
            self._renumber = True
            self._after_request(response)
            return

    def _show_form_heading(self, form: Form) -> None:
        keys = "Enter keeps a value shown in [brackets]; (e.g. …) is only an example; /cancel closes the form."
        body = [*form.notes, self.style.dim(keys)]
        self._write_lines(framed(self.style.bold(f"Form: {form.title}"), body, self.style))

    def _ask_field(self, field: Field) -> str | None:
        """One field's answer ("" for blank), or None when the user closed the form."""
        if field.hint:
            self._write(self.style.dim(f"  {field.hint}"))
        for index, (label, _) in enumerate(field.options, 1):
            self._write(f"  {index}. {label}")
        while True:
            answer = self._ask("  " + field.prompt(self.style))
            if answer is None or answer.strip().lower() == "/cancel":
                return None
            answer = answer.strip()
            if answer or field.optional or field.initial:
                return answer
            self._write(self.style.red("  This field is required."))

    def _ask_external(self, field: Field, form: Form) -> str | None:
        """An external select: what is typed goes to the bot as Slack sends it (`block_suggestion`); the options it
        answers are listed and one is picked by number. Enter keeps the pre-selected option, if any."""
        assert self.driver is not None
        if field.hint:
            self._write(self.style.dim(f"  {field.hint}"))
        while True:
            typed = self._ask("  " + field.prompt(self.style))
            if typed is None or typed.strip().lower() == "/cancel":
                return None
            typed = typed.strip()
            if not typed and field.initial:
                return field.initial
            response = self.driver.block_suggestion(
                field.action_id,
                typed,
                user_id=self.user_id,
                user_name=self.user_name,
                block_id=field.block_id,
                view={
                    "callback_id": form.callback_id,
                    "private_metadata": form.private_metadata,
                    "blocks": form.blocks,
                },
            )
            options, headings = _suggested(response.json() if response.status == 200 and response.body else {})
            for heading in headings:
                self._write(self.style.dim(f"  {heading}"))
            if not options:
                if not typed and field.optional:
                    return ""
                self._write(self.style.red(f"  Nothing matches {typed!r}: type part of a name or an id."))
                continue
            for index, (label, _) in enumerate(options, 1):
                self._write(f"    {index}. {label}")
            if len(options) == 1:
                return options[0][1]
            answer = (self._ask("  Which one? ") or "").strip()
            for index, (label, value) in enumerate(options, 1):
                if answer in (str(index), value, label):
                    return value
            self._write(self.style.dim("  Nothing chosen; type again."))

    # -- input ---------------------------------------------------------------------------------------------
    def _prompt(self) -> str:
        return self.style.green(self.style.bold(self.user_name)) + " › "

    def _read_command(self) -> str | None:
        if not self.interactive:
            line = self.stdin.readline()
            return None if line == "" else line
        self._prompt_text = self._prompt()
        self._at_prompt = True
        self._activity.set()  # output that arrived just before the prompt: show it now
        try:
            line: str | None = self._input(self._prompt_text)
        except EOFError:
            line = None
        finally:
            with self._drain_lock:  # not while the watcher is halfway through redrawing the prompt
                self._at_prompt = False
        if line is None:
            self._write("")
        return line

    def _ask(self, question: str) -> str | None:
        """A question inside a flow (a confirm, a form field). None at end of input."""
        if self.interactive:
            try:
                return self._input(question)
            except EOFError:
                self._write("")
                return None
            except KeyboardInterrupt:
                self._write("")
                return None
        line = self.stdin.readline()
        if line == "":
            self._write(question.rstrip())
            raise EndOfInput
        answer = line.rstrip("\n")
        # Scripted: show the question with its answer, so the transcript reads like the conversation it was.
        self._write(question + answer)
        return answer

    def _input(self, prompt: str) -> str:
        if self.stdin is sys.stdin and self.stdout is sys.stdout:
            if self._readline is not None:  # readline must be told which prompt bytes take no columns
                prompt = _ANSI.sub(lambda m: f"\x01{m.group(0)}\x02", prompt)
            return input(prompt)  # readline editing and history
        self._write_raw(prompt)
        line = self.stdin.readline()
        if line == "":
            raise EOFError
        return line.rstrip("\n")

    def _setup_readline(self) -> None:
        try:
            import readline
        except ImportError:  # not on every platform; the shell works without it
            return
        self._readline = readline
        with contextlib.suppress(OSError):
            readline.read_history_file(HISTORY_FILE.expanduser())
        readline.set_history_length(1000)

    def _save_history(self) -> None:
        if self._readline is not None:
            with contextlib.suppress(OSError):
                self._readline.write_history_file(HISTORY_FILE.expanduser())
