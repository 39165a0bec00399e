"""What a new installation starts with: the Sales funnel, its two lines and the seed's stages."""

STAGES_1ST_LINE = [
    ("Not processed", "grey", "not_processed"),
    ("In conversation", "blue", "in_conversation"),
    ("Link sent", "purple", "link_sent"),
    ("Deal: registration", "yellow", "registration"),
    ("Ignore", "red", "ignore"),
    ("Back from ignore", "orange", "back_from_ignore"),
    ("Deal: first sale", "green", "first_sale"),
    ("Transfer to 2nd line", "blue", "to_2nd_line"),
]
# Stages where a deal is done with: not counted among a manager's open deals (a line's cap).
CLOSING_CODES = {"ignore", "first_sale", "to_2nd_line"}
STAGES_2ND_LINE = [
    ("Not processed", "grey", "not_processed"),
    ("In conversation", "blue", "in_conversation"),
    ("Deal: first sale", "green", "first_sale"),
]


def ensure_default_funnel(apps) -> None:
    """Create the default funnel when there is none, open to the Manager role. Idempotent."""
    Funnel = apps.get_model("deals", "Funnel")
    if Funnel.objects.exists():
        return
    Line = apps.get_model("deals", "Line")
    Stage = apps.get_model("deals", "Stage")
    # The migration that creates the first funnel runs before Stage.closes exists (0008 marks those).
    has_closes = any(field.name == "closes" for field in Stage._meta.get_fields())

    def closing(code):
        return {"closes": code in CLOSING_CODES} if has_closes else {}

    funnel = Funnel.objects.create(name="Sales", position=1, is_default_name=True)
    for position, (line_name, stages) in enumerate((("1st line", STAGES_1ST_LINE), ("2nd line", STAGES_2ND_LINE)), 1):
        line = Line.objects.create(funnel=funnel, name=line_name, position=position, is_default_name=True)
        Stage.objects.bulk_create(
            Stage(line=line, name=name, color=color, code=code, position=index, is_default_name=True, **closing(code))
            for index, (name, color, code) in enumerate(stages, 1)
        )
    grant_funnel_to_group(apps, funnel, "Manager")


def grant_funnel_to_group(apps, funnel, group_name: str) -> None:
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    GroupObjectPermission = apps.get_model("guardian", "GroupObjectPermission")
    group = Group.objects.filter(name=group_name).first()
    perm = Permission.objects.filter(content_type__app_label="deals", codename="access_funnel").first()
    if group is None or perm is None:
        return
    content_type = ContentType.objects.get(app_label="deals", model="funnel")
    GroupObjectPermission.objects.get_or_create(
        group=group, permission=perm, content_type=content_type, object_pk=str(funnel.pk)
    )
