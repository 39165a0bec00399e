"""Helpers the board's browser tests share (the `boss` and `stages` fixtures are in conftest)."""


def board_url(page, stage):
    return f"{page.base}/deals/{stage.line.funnel_id}/"


def column(page, stage):
    return page.locator(f'ol.cards[data-stage="{stage.pk}"]')
