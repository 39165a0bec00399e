"""crm/templatetags/urls.py: our {% url %} answers as Django's does, and keeps its answers."""

import pytest
from django.template import engines
from django.urls import NoReverseMatch, reverse

from crm.templatetags import urls


def render(text: str, **context) -> str:
    return engines["django"].from_string(text).render(context)


def test_the_url_tag_is_ours_and_answers_as_reverse():
    urls._reversed.cache_clear()
    assert render("{% url 'clients:list' %}") == reverse("clients:list")
    assert render("{% url 'clients:detail' 42 %}|{% url 'clients:detail' pk=7 %}") == (
        f"{reverse('clients:detail', args=[42])}|{reverse('clients:detail', kwargs={'pk': 7})}")
    assert render("{% url 'deals:board' pk %}", pk=3) == reverse("deals:board", args=[3])
    assert urls._reversed.cache_info().currsize == 4
    render("{% url 'clients:list' %}")
    assert urls._reversed.cache_info().hits >= 1


def test_as_var_and_a_name_that_does_not_reverse():
    assert render("{% url 'no-such-name' as link %}[{{ link }}]") == "[]"
    with pytest.raises(NoReverseMatch):
        render("{% url 'no-such-name' %}")


def test_an_argument_that_cannot_be_a_key_is_reversed_all_the_same():
    class Unhashable(int):
        __hash__ = None  # type: ignore[assignment]

    assert render("{% url 'clients:detail' pk %}", pk=Unhashable(5)) == reverse("clients:detail", args=[5])


def test_a_new_url_conf_drops_what_was_kept(settings):
    render("{% url 'clients:list' %}")
    assert urls._reversed.cache_info().currsize > 0
    settings.ROOT_URLCONF = "crm.urls"
    assert urls._reversed.cache_info().currsize == 0
    assert urls._addresses.cache_info().currsize == 0


def test_kept_addresses_answer_as_reverse_under_the_script_prefix_and_app_asked():
    from django.urls import set_script_prefix

    named = (("people", "clients:list"), ("out", "crm:logout"))
    assert dict(urls.kept_addresses(named)) == {"people": reverse("clients:list"), "out": reverse("crm:logout")}
    try:
        set_script_prefix("/crm/")
        assert dict(urls.kept_addresses(named)) == {"people": "/crm/clients/", "out": reverse("crm:logout")}
        assert reverse("crm:logout").startswith("/crm/")
    finally:
        set_script_prefix("/")
    assert urls.kept_addresses(named)["people"] == "/clients/"
    with pytest.raises(TypeError):
        urls.kept_addresses(named)["people"] = "/elsewhere/"  # type: ignore[index]
