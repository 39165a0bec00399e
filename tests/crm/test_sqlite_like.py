from crm.sqlite import unicode_like


def test_unicode_like_matches_like_postgres_ilike():
    assert unicode_like("%петр%", "Петров Пётр")
    assert unicode_like("%ПЁТР%", "Петров Пётр")
    assert not unicode_like("%петр%", "Сидоров")
    assert unicode_like("a_c", "ABC") and not unicode_like("a_c", "abbc")
    assert unicode_like(r"%50\%%", "скидка 50%", "\\") and not unicode_like(r"%50\%%", "скидка 50 руб", "\\")
    assert unicode_like("%", None) is None
