"""The known feature flags, in one place. Adding a flag: an entry here (label and description
translated), and the gate where the capability lives (``permissions``/``blueprints`` below, or
a ``flag_on`` call)."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l


@dataclass(frozen=True)
class Flag:
    name: str
    label: str  # lazy: read in the reader's language
    description: str
    # what the flag switches: these permissions count as not held (navigation, templates'
    # ``can()``), and these blueprints' pages answer 403, for a user the flag is off for
    permissions: tuple[str, ...] = ()
    blueprints: tuple[str, ...] = ()


FLAGS: dict[str, Flag] = {flag.name: flag for flag in (
    Flag("strategies", _l("Collection strategies"),
         _l("The strategies pages for supervisors, and the daily run that assigns accounts to "
            "strategies (skipped while the flag is off for everyone)."),
         permissions=("strategies.view", "strategies.manage"), blueprints=("strategies",)),
    Flag("messages", _l("Outbound messages"),
         _l("Sending one-off SMS, e-mails and letters from the case view and editing the "
            "templates; the dispatcher holds queued messages while the flag is off for "
            "everyone."),
         permissions=("messages.send", "messages.templates"), blueprints=("messages",)),
    Flag("placements", _l("Legal and agency placements"),
         _l("Placing cases with legal or an external agency, recalling them and the "
            "placements pages."),
         permissions=("placements.view", "placements.manage"), blueprints=("placements",)),
)}


class UnknownFlag(KeyError):
    """A flag name that is not in FLAGS (a programming error, or a typo at the CLI)."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return (f"unknown feature flag {self.name!r}: the known flags are "
                f"{', '.join(sorted(FLAGS))}")


def get(name: str) -> Flag:
    try:
        return FLAGS[name]
    except KeyError:
        raise UnknownFlag(name) from None


def flags_gating_permission(permission: str) -> tuple[str, ...]:
    return tuple(f.name for f in FLAGS.values() if permission in f.permissions)


def flags_gating_blueprint(blueprint: str | None) -> tuple[str, ...]:
    return tuple(f.name for f in FLAGS.values() if blueprint in f.blueprints)
