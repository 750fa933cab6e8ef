"""Block Kit → terminal text, for the local shell. Pure: no I/O, no clock, no Slack calls.

What a Slack client draws, drawn with lines of text: section text and fields, context in a dim line, dividers,
headers, and every interactive element numbered (`[3] Delete`) so the shell can press it by number. Slack's
mrkdwn becomes terminal emphasis (ANSI) when colours are on, and plain text when they are off, so piped output
and test transcripts read cleanly.
Mrkdwn itself (emphasis, emoji, names, the `Style`) is in devkit.shell.mrkdwn; its names are re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from devkit.fake_slack import blocks_text
from devkit.shell.mrkdwn import EMOJI, Names, Style, emojize, mrkdwn, text_object, unescape

__all__ = [
    "DIVIDER_WIDTH",
    "EMOJI",
    "Button",
    "Field",
    "Form",
    "Names",
    "Rendered",
    "Style",
    "button_label",
    "confirm_question",
    "emojize",
    "framed",
    "is_yes",
    "mrkdwn",
    "parse_modal",
    "render_blocks",
    "text_object",
    "unescape",
]

DIVIDER_WIDTH = 40


# ---- buttons ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Button:
    """An interactive element as shown, with what is needed to press it."""

    number: int
    label: str
    action_id: str
    value: str
    block_id: str
    kind: str  # "button", "static_select", …
    style: str | None = None
    confirm: dict[str, Any] | None = None
    url: str | None = None
    options: tuple[tuple[str, str], ...] = ()  # (label, value) for selects


def _button(element: dict[str, Any], block_id: str, number: int, names: Names) -> Button:
    kind = str(element.get("type", "button"))
    options: tuple[tuple[str, str], ...] = ()
    if kind.endswith("select"):
        options = tuple(
            (text_object(o.get("text"), Style(), names), str(o.get("value", "")))
            for o in element.get("options", []) or []
            if isinstance(o, dict)
        )
    label = text_object(element.get("text") or element.get("placeholder"), Style(), names) or kind
    return Button(
        number=number,
        label=label,
        action_id=str(element.get("action_id", "")),
        value=str(element.get("value", "")),
        block_id=block_id,
        kind=kind,
        style=element.get("style"),
        confirm=element.get("confirm") if isinstance(element.get("confirm"), dict) else None,
        url=element.get("url"),
        options=options,
    )


def button_label(button: Button, style: Style) -> str:
    """`[3] Delete`, red for danger and green for primary, as Slack colours them."""
    text = f"[{button.number}] {button.label}"
    if button.kind.endswith("select"):
        text += " ▾"
    if button.url:
        text += f" ↗ {button.url}"
    if button.style == "danger":
        return style.red(text)
    if button.style == "primary":
        return style.green(text)
    return style.bold(text)


def confirm_question(confirm: Mapping[str, Any], style: Style = Style(), names: Names = Names()) -> str:
    """A confirm dialog as one question: `Title — text [y/N] ` (No is the default, as Slack's focus is)."""
    title = text_object(confirm.get("title"), style, names) or "Are you sure?"
    body = text_object(confirm.get("text"), style, names)
    question = f"{style.bold(title)} — {body}" if body else style.bold(title)
    return f"{question} [y/N] "


def is_yes(answer: str | None) -> bool:
    return (answer or "").strip().lower() in ("y", "yes")


# ---- blocks ----------------------------------------------------------------------------------------------
@dataclass
class Rendered:
    lines: list[str]
    buttons: list[Button]


def render_blocks(
    blocks: Sequence[dict[str, Any]],
    *,
    fallback_text: str = "",
    style: Style = Style(),
    names: Names = Names(),
    first_number: int = 1,
) -> Rendered:
    """Render a message's blocks (or its text when it has none) and number its interactive elements."""
    lines: list[str] = []
    buttons: list[Button] = []

    def number_next(element: dict[str, Any], block_id: str) -> Button:
        button = _button(element, block_id, first_number + len(buttons), names)
        buttons.append(button)
        return button

    if not blocks:
        text = mrkdwn(fallback_text, style, names)
        return Rendered(text.split("\n") if text else [], buttons)

    for index, block in enumerate(blocks):
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        block_id = str(block.get("block_id", f"block-{index}"))
        if kind == "section":
            section = text_object(block.get("text"), style, names).split("\n") if block.get("text") else []
            for item in block.get("fields", []) or []:
                section.extend("  " + line for line in text_object(item, style, names).split("\n"))
            accessory = block.get("accessory")
            if isinstance(accessory, dict) and "action_id" in accessory:
                shown = button_label(number_next(accessory, block_id), style)
                if section:
                    section[0] = f"{section[0]}  {shown}"
                else:
                    section.append(shown)
            lines.extend(section)
        elif kind == "header":
            lines.append(style.bold(text_object(block.get("text"), style, names).upper()))
        elif kind == "context":
            parts = []
            for element in block.get("elements", []) or []:
                if isinstance(element, dict) and element.get("type") == "image":
                    parts.append(f"[{element.get('alt_text', 'image')}]")
                else:
                    parts.append(text_object(element, style, names))
            lines.extend(style.dim(line) for line in " · ".join(p for p in parts if p).split("\n"))
        elif kind == "divider":
            lines.append(style.dim("─" * DIVIDER_WIDTH))
        elif kind == "actions":
            shown = [
                button_label(number_next(element, block_id), style)
                for element in block.get("elements", []) or []
                if isinstance(element, dict) and "action_id" in element
            ]
            if shown:
                lines.append("  ".join(shown))
        elif kind == "image":
            lines.append(style.dim(f"[image: {block.get('alt_text', '')}]"))
        elif kind == "input":
            lines.append(text_object(block.get("label"), style, names) + ": …")
        else:  # rich_text and anything newer: at least its words
            text = blocks_text([block])
            if text:
                lines.extend(mrkdwn(text, style, names).split("\n"))
    return Rendered(lines, buttons)


# ---- modals ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    """One input block of a modal, asked as one prompt."""

    block_id: str
    action_id: str
    kind: str  # the element type, e.g. "plain_text_input"
    label: str
    optional: bool
    hint: str = ""
    placeholder: str = ""
    initial: str = ""
    options: tuple[tuple[str, str], ...] = ()  # (label, value) for selects

    def prompt(self, style: Style = Style()) -> str:
        """`Server id [12345]: `: the default in brackets, the placeholder and optionality dimmed."""
        default = f" [{self.initial}]" if self.initial else ""
        # A placeholder that reads like a value (`before-update`) is shown as an example: Enter does not keep it.
        example = self.placeholder if " " in self.placeholder else f"e.g. {self.placeholder}"
        extras = [] if self.initial or not self.placeholder else [example]
        if self.optional:
            extras.append("optional")
        suffix = style.dim(f" ({', '.join(extras)})") if extras else ""
        return f"{style.bold(self.label)}{default}{suffix}: "

    def state(self, answer: str) -> dict[str, Any]:
        """The view.state.values entry Slack would send for this answer."""
        value = answer or self.initial
        if self.kind == "external_select":  # the options came from the bot; the answer is the chosen value
            option = {"text": {"type": "plain_text", "text": value}, "value": value} if value else None
            return {"type": self.kind, "selected_option": option}
        if self.kind.endswith("select"):
            chosen = next(
                ((label, v) for i, (label, v) in enumerate(self.options, 1) if value in (str(i), v, label)),
                None,
            )
            if chosen is None:
                return {"type": self.kind, "selected_option": None}
            option = {"text": {"type": "plain_text", "text": chosen[0]}, "value": chosen[1]}
            return {"type": self.kind, "selected_option": option}
        return {"type": self.kind, "value": value or None}


@dataclass(frozen=True)
class Form:
    """A modal as the shell asks it: a title, what it says, and its fields in order."""

    title: str
    callback_id: str
    private_metadata: str
    submit: str
    close: str
    notes: list[str]
    fields: list[Field]
    blocks: list[dict[str, Any]]

    def values(self, answers: Mapping[str, str]) -> dict[str, dict[str, dict[str, Any]]]:
        """view.state.values for `answers` (block_id → text); fields not answered keep their initial value."""
        return {f.block_id: {f.action_id: f.state(answers.get(f.block_id, ""))} for f in self.fields}


def parse_modal(view: Mapping[str, Any], style: Style = Style(), names: Names = Names()) -> Form:
    fields: list[Field] = []
    notes: list[str] = []
    blocks = [b for b in view.get("blocks", []) or [] if isinstance(b, dict)]
    for index, block in enumerate(blocks):
        if block.get("type") != "input":
            notes.extend(render_blocks([block], style=style, names=names).lines)
            continue
        element = block.get("element") or {}
        options = tuple(
            (text_object(o.get("text"), Style(), names), str(o.get("value", "")))
            for o in element.get("options", []) or []
            if isinstance(o, dict)
        )
        initial = element.get("initial_value")
        if isinstance(element.get("initial_option"), dict):
            initial = element["initial_option"].get("value")
        fields.append(
            Field(
                block_id=str(block.get("block_id", f"block-{index}")),
                action_id=str(element.get("action_id", "value")),
                kind=str(element.get("type", "plain_text_input")),
                label=text_object(block.get("label"), Style(), names),
                optional=bool(block.get("optional")),
                hint=text_object(block.get("hint"), style, names) if block.get("hint") else "",
                placeholder=text_object(element.get("placeholder"), Style(), names)
                if element.get("placeholder")
                else "",
                initial=str(initial) if initial else "",
                options=options,
            )
        )
    return Form(
        title=text_object(view.get("title"), Style(), names) or "Form",
        callback_id=str(view.get("callback_id", "")),
        private_metadata=str(view.get("private_metadata", "")),
        submit=text_object(view.get("submit"), Style(), names) or "Submit",
        close=text_object(view.get("close"), Style(), names) or "Cancel",
        notes=notes,
        fields=fields,
        blocks=blocks,
    )


# ---- framing ---------------------------------------------------------------------------------------------
def framed(heading: str, body: Sequence[str], style: Style = Style(), *, indent: str = "") -> list[str]:
    """A heading line, then the body indented under it: how each message appears in the transcript."""
    lines = [indent + style.dim("▸ ") + heading]
    lines.extend(f"{indent}  {line}" if line else "" for line in body)
    return lines
