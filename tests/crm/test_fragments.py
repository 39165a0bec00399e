"""crm/fragments.py: the Jinja2 fragments write every value escaped exactly as markupsafe.escape
writes it, without its Markup wrapper; macros, {% set %} blocks and |safe keep their Markup."""

import pytest
from django.template import engines
from django.utils import translation
from django.utils.functional import lazystr
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from markupsafe import Markup, escape

from crm.fragments import FragmentTemplate, output_escape, words


class Html:
    def __html__(self):
        return "<i>mine</i>"


class Named:
    def __str__(self):
        return 'Tom & "Jerry" <b>'


VALUES = ["", "plain", '<img src=x onerror="alert(1)">', "O'Brien & Sons", "Ёлкин <b>", 0, 12345, -1.5, None, True,
          Markup("<b>safe</b>"), mark_safe("<em>Django safe</em>"), Html(), Named(), lazystr("<lazy> & 'quoted'"),
          type("Sub", (str,), {})("<sub>")]


@pytest.mark.parametrize("value", VALUES, ids=[f"{i}-{type(v).__name__}" for i, v in enumerate(VALUES)])
def test_output_escape_writes_what_markupsafe_escape_writes(value):
    assert output_escape(value) == str(escape(value))
    assert isinstance(output_escape(value), str)


def render(source: str, **context) -> str:
    env = engines["fragments"].env  # type: ignore[attr-defined]
    return env.from_string(source).render(context)


def test_a_fragment_writes_values_escaped_and_markup_as_it_is():
    env = engines["fragments"].env  # type: ignore[attr-defined]
    template = env.from_string("{{ x }}")
    assert isinstance(template, FragmentTemplate)
    assert template.root_render_func.__globals__["escape"] is output_escape
    assert render("<p title='{{ x }}'>{{ x }}</p>", x="a'<b>\"&") == "<p title='a&#39;&lt;b&gt;&#34;&amp;'>a&#39;&lt;b&gt;&#34;&amp;</p>"
    assert render("{{ x }}|{{ x|safe }}|{{ m }}", x="<b>", m=Markup("<i>ok</i>")) == "&lt;b&gt;|<b>|<i>ok</i>"


def test_macros_and_set_blocks_are_escaped_once():
    source = ("{% macro chip(name) %}<span>{{ name }}</span>{% endmacro %}"
              "{% set block %}<u>{{ x }}</u>{% endset %}"
              "{{ chip(x) }}{{ block }}{{ chip(x) ~ '&' }}")
    assert render(source, x="A & B") == "<span>A &amp; B</span><u>A &amp; B</u><span>A &amp; B</span>&amp;"


def test_words_are_translated_once_per_language_and_kept_read_only():
    asked = []

    @words
    def texts():
        asked.append(translation.get_language())
        return {"deals": gettext("Deals"), "sales": gettext("Sales")}

    with translation.override("ru"):
        assert dict(texts()) == {"deals": "Сделки", "sales": "Продажи"}
        assert texts()["deals"] == "Сделки"
    with translation.override("en"):
        assert dict(texts()) == {"deals": "Deals", "sales": "Sales"}
    with translation.override("ru"):
        assert texts()["deals"] == "Сделки"
    assert asked == ["ru", "en"]
    with pytest.raises(TypeError):
        texts()["deals"] = "changed"  # type: ignore[index]
