"""Robots' sentences, worded when read (in the reader's language): the feed, the log, the dry run."""

from __future__ import annotations

from datetime import datetime

from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from deals.models import DEFAULT_LABELS

from .models import Robot, Run

CONDITION_LABELS = {
    "channel": gettext_lazy("Channel"),
    "tag": gettext_lazy("Tag"),
    "responsible": gettext_lazy("Responsible"),
    "budget": gettext_lazy("Budget"),
    "field": gettext_lazy("Field value"),
    "hours": gettext_lazy("Working hours"),
}

ERRORS = {
    "stage_gone": gettext_lazy("the stage no longer exists"),
    "line_gone": gettext_lazy("the line no longer exists or has no stages"),
    "empty": gettext_lazy("the message is empty"),
    "no_chat": gettext_lazy("the client has no chat to write to"),
    "no_type": gettext_lazy("there is no task type"),
    "user_gone": gettext_lazy("the user no longer exists or is inactive"),
    "not_eligible": gettext_lazy("the user may not receive this line's deals"),
    "tag_gone": gettext_lazy("the tag no longer exists"),
    "unknown": gettext_lazy("this action is not known"),
}


def _when(value: str) -> str:
    return formats.date_format(timezone.localtime(datetime.fromisoformat(value)), "SHORT_DATETIME_FORMAT")


def outcome_text(outcome: dict) -> str:
    """What one action did (or would do): "moved the deal to “Link sent”"."""
    code, value, text = outcome.get("code", ""), outcome.get("value", ""), outcome.get("text", "")
    error = outcome.get("error")
    if error:
        reason = str(ERRORS.get(error, error))
        label = Robot.Action(code).label if code in Robot.Action.values else code
        return _("could not %(action)s: %(reason)s") % {"action": str(label).lower(), "reason": reason}
    if code == "move":
        return _("moved the deal to “%(stage)s”") % {"stage": DEFAULT_LABELS.get(value, value)}
    if code == "transfer":
        return _("transferred the deal to “%(line)s”") % {"line": DEFAULT_LABELS.get(value, value)}
    if code == "message":
        return _("sent the message in %(channel)s: %(text)s") % {"channel": value, "text": text}
    if code == "task":
        return _("created the task “%(task)s”, due %(when)s") % {"task": value, "when": _when(text) if text else ""}
    if code == "responsible":
        return _("made %(user)s responsible") % {"user": value}
    if code == "tag_add":
        return _("added the tag “%(tag)s”") % {"tag": value}
    if code == "tag_remove":
        return _("removed the tag “%(tag)s”") % {"tag": value}
    if code == "notify":
        return _("notified %(users)s: %(text)s") % {"users": value or _("nobody"), "text": text}
    if code == "loop":
        return _("stopped: loop (%(n)s robots in a row)") % {"n": value}
    if code == "suspended":
        return _("stopped: loop (fired %(n)s times for this deal within an hour); suspended for this deal") % {"n": value}
    if code == "failed":
        return _("failed: %(error)s") % {"error": outcome.get("error") or text}
    return text or code


def feed_text(item) -> str:
    """A robot's line in the deal's feed (crm.Activity of kind ROBOT)."""
    outcome = {"code": item.field, "value": item.new_value, "text": item.text}
    if item.field == "failed":
        outcome = {"code": "failed", "error": item.text}
    elif item.text and item.field not in ("message", "task", "notify"):
        outcome["error"] = item.text
    return _("Robot “%(robot)s” %(did)s") % {"robot": item.field_label, "did": outcome_text(outcome)}


def run_text(run: Run) -> str:
    """Why a run ended as it did, for the robot's log."""
    detail = run.detail or {}
    code = detail.get("code")
    if run.state == Run.State.DONE:
        return "; ".join(outcome_text(o) for o in detail.get("done", [])) or _("fired (no actions)")
    if code == "condition":
        return _("skipped: the condition “%(condition)s” was not met") % {
            "condition": CONDITION_LABELS.get(str(detail.get("condition")), detail.get("condition"))}
    if code == "left":
        return _("cancelled: the deal left the stage first")
    if code == "off":
        return _("cancelled: the robot was switched off")
    if code == "changed":
        return _("cancelled: the robot no longer waits for idle minutes")
    if code == "hours":
        return _("waiting for working hours (until %(when)s)") % {"when": _when(detail["until"])}
    if code == "loop":
        return _("stopped: loop (%(n)s robots in a row)") % {"n": detail.get("depth", "")}
    if code == "suspended":
        return _("suspended for this deal: it fired too often within an hour")
    if code == "error":
        done = "; ".join(outcome_text(o) for o in detail.get("done", []))
        failed = _("failed: %(error)s") % {"error": detail.get("error", "")}
        return f"{done}; {failed}" if done else failed
    if run.state == Run.State.WAITING and run.due_at:
        return _("due %(when)s") % {"when": formats.date_format(timezone.localtime(run.due_at), "SHORT_DATETIME_FORMAT")}
    return str(run.get_state_display())


def trigger_text(robot: Robot) -> str:
    if robot.trigger == Robot.Trigger.IDLE:
        return _("%(n)s min in the stage without activity") % {"n": robot.idle_minutes}
    return str(robot.get_trigger_display())
