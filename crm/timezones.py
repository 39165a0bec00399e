"""Time zones offered in a user's settings (deadlines are shown and entered in the user's zone)."""

TIME_ZONES = [
    "Europe/Kaliningrad", "Europe/Moscow", "Europe/Samara", "Asia/Yekaterinburg", "Asia/Omsk", "Asia/Novosibirsk",
    "Asia/Krasnoyarsk", "Asia/Irkutsk", "Asia/Yakutsk", "Asia/Vladivostok", "Asia/Magadan", "Asia/Kamchatka",
    "Europe/Minsk", "Asia/Almaty", "Asia/Tashkent", "Asia/Bishkek", "Asia/Tbilisi", "Asia/Yerevan", "Asia/Baku",
    "Europe/Istanbul", "Asia/Dubai", "Europe/Berlin", "Europe/London", "America/New_York", "UTC",
]
