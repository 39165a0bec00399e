from django import template

from robots import texts

register = template.Library()


@register.filter
def robot_feed(item) -> str:
    """A robot's feed entry in the reader's language (auto-escaped where it is shown)."""
    return texts.feed_text(item)


@register.filter
def run_text(run) -> str:
    return texts.run_text(run)


@register.filter
def outcome_text(outcome: dict) -> str:
    return texts.outcome_text(outcome)


@register.filter
def trigger_text(robot) -> str:
    return texts.trigger_text(robot)
