DEFAULT_TYPES = ["Contact the client", "Birthday greeting", "Meeting"]  # seed 002


def ensure_task_types(apps) -> None:
    TaskType = apps.get_model("tasks", "TaskType")
    if TaskType.objects.exists():
        return
    for position, name in enumerate(DEFAULT_TYPES, 1):
        TaskType.objects.create(name=name, position=position, is_default_name=True)
