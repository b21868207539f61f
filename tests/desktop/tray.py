"""The app's tray menu as a desktop panel sees it: read and clicked over D-Bus.

On Linux the tray icon is an Ayatana AppIndicator: the app exports its menu on the session bus with the
`com.canonical.dbusmenu` interface (under `/org/ayatana/NotificationItem/<id>/Menu`), and a panel shows that menu
and sends a `clicked` event for the item the user picks. Xvfb has no panel, but the app exports the menu all the
same, so the tests do what a panel does: `GetLayout` for the items (labels, enabled) and `Event(id, "clicked")`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from jeepney import DBusAddress, MessageType, new_method_call
from jeepney.io.blocking import open_dbus_connection

from harness import wait_until

BUS = DBusAddress("/org/freedesktop/DBus", bus_name="org.freedesktop.DBus", interface="org.freedesktop.DBus")
ITEMS_ROOT = "/org/ayatana/NotificationItem"
DBUSMENU = "com.canonical.dbusmenu"


@dataclass
class Item:
    id: int
    label: str
    enabled: bool
    visible: bool
    checked: bool


class Tray:
    """The tray menu of the app process `pid`."""

    def __init__(self, pid: int):
        self.conn = open_dbus_connection(bus="SESSION")
        self.menu: DBusAddress = wait_until("the app's tray menu on D-Bus", lambda: self._find(pid))

    def close(self) -> None:
        self.conn.close()

    def _call(self, address: DBusAddress, method: str, signature: str = "", body: tuple = ()):
        reply = self.conn.send_and_get_reply(new_method_call(address, method, signature, body), timeout=10)
        if reply.header.message_type == MessageType.error:
            return None
        return reply.body

    def _find(self, pid: int) -> DBusAddress | None:
        (names,) = self._call(BUS, "ListNames")
        for name in (n for n in names if n.startswith(":")):
            owner = self._call(BUS, "GetConnectionUnixProcessID", "s", (name,))
            if not owner or owner[0] != pid:
                continue
            xml = self._call(
                DBusAddress(ITEMS_ROOT, bus_name=name, interface="org.freedesktop.DBus.Introspectable"), "Introspect"
            )
            if not xml:
                continue
            for node in _child_nodes(xml[0]):
                return DBusAddress(f"{ITEMS_ROOT}/{node}/Menu", bus_name=name, interface=DBUSMENU)
        return None

    def items(self) -> list[Item]:
        """The menu's items, top level, in order (separators left out)."""
        _, (_, _, children) = self._call(self.menu, "GetLayout", "iias", (0, -1, []))
        out = []
        for _, (item_id, props, _) in children:
            if props.get("type", ("s", ""))[1] == "separator":
                continue
            out.append(Item(
                id=item_id,
                label=props.get("label", ("s", ""))[1],
                enabled=props.get("enabled", ("b", True))[1],
                visible=props.get("visible", ("b", True))[1],
                checked=props.get("toggle-state", ("i", 0))[1] == 1,
            ))
        return out

    def labels(self) -> list[str]:
        return [i.label for i in self.items() if i.visible]

    def wait_label(self, what: str, check, deadline_s: float = 30) -> list[str]:
        """Waits until `check(labels)` holds; returns the labels."""
        def holds():
            labels = self.labels()
            return labels if check(labels) else None
        try:
            return wait_until(what, holds, deadline_s=deadline_s, every_s=0.1)
        except AssertionError as e:
            raise AssertionError(f"{e}; the menu says {self.labels()}") from None

    def checked(self, label: str) -> bool:
        """Whether the check item `label` is on."""
        return any(i.checked for i in self.items() if i.label == label)

    def click(self, label: str) -> None:
        """Clicks the enabled item whose label starts with `label`, as a panel does."""
        def enabled_item():
            return next((i for i in self.items() if i.label.startswith(label) and i.enabled and i.visible), None)
        try:
            item = wait_until(f"an enabled tray item {label!r}", enabled_item, every_s=0.1)
        except AssertionError as e:
            raise AssertionError(f"{e}; the menu says {self.labels()}") from None
        self._call(self.menu, "Event", "isvu", (item.id, "clicked", ("i", 0), 0))


def _child_nodes(xml: str) -> list[str]:
    return [n.get("name") for n in ET.fromstring(xml).findall("node") if n.get("name")]
